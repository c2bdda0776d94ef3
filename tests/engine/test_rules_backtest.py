"""Backtest: alerts a ruleset would have opened over history, with cooldowns, writing nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.rules.backtest import (
    backtest,
    compare,
    percentile,
    step_times,
    working_days,
)
from engine.rules.pack import load_pack
from models import Alert, AlertEvent, Decision, OutboxMessage, RuleMark, table_of
from tests.engine.rulekit import copy_rules, database, exposure, snapshot

START, END = date(2025, 1, 6), date(2025, 3, 31)  # 13 Mondays


def pack_with(folder, **cooldowns: str):
    """The shipped rules with the cooldowns the counts below are worked out for (the shipped
    ones are the steering group's to change)."""
    copy_rules(folder)
    for stem, cooldown in cooldowns.items():
        path = folder / "interventions" / f"{stem}.yaml"
        lines = [
            f"cooldown: {cooldown}" if line.startswith("cooldown:") else line
            for line in path.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")
    return load_pack(folder)


@pytest.fixture
def pack(tmp_path):
    return pack_with(tmp_path / "rules", cluster="30d", **{"trim-check": "7d"})


def history(conn, as_of: datetime):
    """A's cluster lasts all quarter; B's only in February; C meets nothing."""
    february = as_of.month == 2
    return [
        snapshot("A", tier2plus_exposures_30d=3, unit_id="T1"),
        snapshot("B", tier2plus_exposures_30d=3 if february else 0, unit_id="T2"),
        snapshot("C", unit_id="T1"),
    ]


def incidents(conn, after: datetime, until: datetime):
    """Tier-3 exposures for A on 7 and 9 January (one cooldown) and 20 March."""
    times = [
        datetime(2025, 1, 7, 3, tzinfo=UTC),
        datetime(2025, 1, 9, 3, tzinfo=UTC),
        datetime(2025, 3, 20, 22, tzinfo=UTC),
    ]
    return [exposure("A", t, ref=f"I{i}") for i, t in enumerate(times) if after < t <= until]


def test_counts_per_rule_month_and_unit_respect_cooldowns_and_write_nothing(database_url, pack):
    engine = database(database_url)
    with engine.connect() as conn:
        report = backtest(conn, pack, START, END, snapshots=history, exposures=incidents)
    assert report.steps == 13 and report.disagreements == []
    # A: 6 Jan, then 30 days later (10 Feb), then 17 Mar; B: 3 Feb, then 30 days later: March.
    assert report.alerts["cluster-30d"] == 4
    assert dict(report.by_month["cluster-30d"]) == {"2025-01": 1, "2025-02": 2, "2025-03": 1}
    assert dict(report.by_unit["cluster-30d"]) == {"T1": 3, "T2": 1}
    assert report.alerts["trim-check"] == 2  # 9 January is within the 7-day cooldown
    assert dict(report.by_month["trim-check"]) == {"2025-01": 1, "2025-03": 1}
    assert report.alerts["combined-indicator"] == 0 and "peer-high-exposure" in report.alerts
    document = report.to_json()
    assert document["rules"]["cluster-30d"]["by_month"] == {
        "2025-01": 1,
        "2025-02": 2,
        "2025-03": 1,
    }
    with engine.connect() as conn:
        for model in (Alert, AlertEvent, Decision, OutboxMessage, RuleMark):
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(table_of(model))).scalar() == 0
            )
    engine.dispose()


def test_a_changed_folder_is_compared_with_the_running_version(tmp_path, pack):
    changed = pack_with(tmp_path / "changed", cluster="6d", **{"trim-check": "7d"})
    running = backtest(None, pack, START, END, snapshots=history, exposures=incidents)
    candidate = backtest(None, changed, START, END, snapshots=history, exposures=incidents)
    changes = compare(running, candidate)
    assert changes["cluster-30d"] == {"running": 4, "candidate": 17, "change": 13}
    assert changes["trim-check"]["change"] == 0


def test_daily_steps_end_each_day_in_london():
    times = step_times(date(2025, 3, 29), date(2025, 3, 31), "day")
    assert [t.hour for t in times] == [23, 22, 22]  # UTC: the clocks went forward on the 30th
    assert times[-1] - times[0] == timedelta(days=2, hours=-1)


def test_the_period_includes_both_days_and_nothing_outside_it(pack):
    """Weekly steps from Monday 1 June 2026 to Tuesday 30 June: an exposure on 29 May is
    before the period (it used to count in a month 2026-05), one on the evening of the 30th
    is inside it although the last weekly step is the 29th."""
    start, end = date(2026, 6, 1), date(2026, 6, 30)
    moments = step_times(start, end, "week")
    assert moments[-2].date() == date(2026, 6, 29)
    assert moments[-1] == datetime(2026, 6, 30, 22, 59, 59, tzinfo=UTC)  # 23:59:59 BST
    times = [
        datetime(2026, 5, 29, 12, tzinfo=UTC),
        datetime(2026, 5, 31, 22, 59, 59, tzinfo=UTC),  # 23:59:59 on 31 May, London
        datetime(2026, 5, 31, 23, 0, 0, tzinfo=UTC),  # midnight: the first moment of June
        datetime(2026, 6, 30, 20, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 30, tzinfo=UTC),  # 1 July in London
    ]

    def exposures(conn, after, until):
        return [
            exposure(f"P{i}", t, ref=f"I{i}") for i, t in enumerate(times) if after < t <= until
        ]

    def nobody(conn, as_of):
        return []

    report = backtest(None, pack, start, end, snapshots=nobody, exposures=exposures)
    assert dict(report.by_month["trim-check"]) == {"2026-06": 2}
    assert report.steps == len(moments) == 6


def test_the_load_per_person_supervisor_and_working_day(pack):
    """Four people under two supervisors over a quarter; the figures follow from the counts."""

    def people(conn, as_of):
        february = as_of.month == 2
        return [
            snapshot("A", tier2plus_exposures_30d=3, unit_id="T1", supervisor_id="S1"),
            snapshot("B", tier2plus_exposures_30d=3 if february else 0, supervisor_id="S1"),
            snapshot("C", supervisor_id="S2"),
            snapshot("D", supervisor_id="S2"),
        ]

    report = backtest(None, pack, START, END, snapshots=people, exposures=incidents)
    load = report.load_figures()
    # cluster-30d (supervisor): A on 6 January, 10 February, 17 March; B on 3 February.
    # trim-check (supervisor and wellbeing): A on 7 January and 20 March.
    assert report.alerts["cluster-30d"] == 4 and report.alerts["trim-check"] == 2
    alerts, days = 6, (END - START).days + 1
    assert load["alerts"] == alerts and load["people"] == 4
    assert load["per_person_year"] == round(alerts / 4 * 365.25 / days, 3)
    assert load["per_100_staff_year"] == round(100 * alerts / 4 * 365.25 / days, 1)
    # S1 hears of two alerts in each month, S2 of none: six supervisor-months.
    monthly = [2, 2, 2, 0, 0, 0]
    assert load["per_supervisor_month_mean"] == round(sum(monthly) / 6, 2)
    assert load["per_supervisor_month_p95"] == 2 and load["supervisors"] == 2
    assert load["wellbeing_per_working_day"] == round(2 / working_days(START, END), 2)
    assert load["share_alerted"] == 0.5  # A and B of four
    assert report.to_json()["load"] == load


def test_working_days_and_percentiles():
    assert working_days(date(2025, 1, 6), date(2025, 1, 12)) == 5  # Monday to Sunday
    assert working_days(date(2025, 1, 4), date(2025, 1, 6)) == 1  # Saturday to Monday
    assert working_days(START, END) == 61  # 12 whole weeks and a Monday
    assert percentile([0] * 19 + [7], 0.95) == 0 and percentile([0] * 18 + [5, 7], 0.95) == 5
    assert percentile([], 0.95) == 0
