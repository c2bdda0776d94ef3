"""Backtest: alerts a ruleset would have opened over history, with cooldowns, writing nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from engine.rules.backtest import backtest, compare, step_times
from engine.rules.pack import load_pack
from models import Alert, AlertEvent, Decision, OutboxMessage, RuleMark
from tests.engine.rulekit import copy_rules, database, default_pack, exposure, snapshot

START, END = date(2025, 1, 6), date(2025, 3, 31)  # 13 Mondays


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


def test_counts_per_rule_month_and_unit_respect_cooldowns_and_write_nothing(database_url):
    engine = database(database_url)
    with engine.connect() as conn:
        report = backtest(conn, default_pack(), START, END, snapshots=history, exposures=incidents)
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
                conn.execute(sa.select(sa.func.count()).select_from(model.__table__)).scalar() == 0
            )
    engine.dispose()


def test_a_changed_folder_is_compared_with_the_running_version(tmp_path):
    folder = copy_rules(tmp_path / "rules")
    cluster = folder / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("cooldown: 30d", "cooldown: 6d"))
    running = backtest(None, default_pack(), START, END, snapshots=history, exposures=incidents)
    candidate = backtest(
        None, load_pack(folder), START, END, snapshots=history, exposures=incidents
    )
    changes = compare(running, candidate)
    assert changes["cluster-30d"] == {"running": 4, "candidate": 17, "change": 13}
    assert changes["trim-check"]["change"] == 0


def test_daily_steps_end_each_day_in_london():
    times = step_times(date(2025, 3, 29), date(2025, 3, 31), "day")
    assert [t.hour for t in times] == [23, 22, 22]  # UTC: the clocks went forward on the 30th
    assert times[-1] - times[0] == timedelta(days=2, hours=-1)
