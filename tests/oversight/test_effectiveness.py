"""Rule effectiveness from the outcomes recorded on alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.oversight.effectiveness import PeriodError, effectiveness
from models import Alert, table_of
from tests.engine.rulekit import database
from tests.oversight.forcekit import alert_row


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = database(database_url)
    opened = at("2025-05-10T09:00")
    hours = timedelta(hours=1)
    rows = [
        # combined-indicator: acknowledged after 2h, 4h and 30h; one resolved unacknowledged
        # after 6h; one still open. Outcomes: support offered, false positive twice.
        alert_row(1, "A", "resolved", opened, acknowledged_at=opened + 2 * hours,
                  resolved_at=opened + 50 * hours, outcome="support_offered"),
        alert_row(2, "B", "resolved", opened, acknowledged_at=opened + 4 * hours,
                  resolved_at=opened + 5 * hours, outcome="false_positive"),
        alert_row(3, "C", "acknowledged", opened, acknowledged_at=opened + 30 * hours),
        alert_row(4, "D", "resolved", opened, resolved_at=opened + 6 * hours,
                  outcome="false_positive"),
        alert_row(5, "E", "open", opened),
        alert_row(6, "F", "open", at("2025-06-01T00:30"), rule_id="trim-check",
                  title="TRiM check"),
        # Outside the period (1 May to 31 May, London): 23:30 UTC on 31 May is 1 June BST.
        alert_row(7, "G", "open", at("2025-05-31T23:30")),
        alert_row(8, "H", "open", at("2025-04-30T22:59")),
    ]  # fmt: skip
    for index, row in enumerate(rows):
        row["open_key"] = None if row["status"] == "resolved" else f"k{index}"
        row.setdefault("acknowledged_at", None)
    with engine.begin() as conn:
        conn.execute(table_of(Alert).insert(), rows)
    yield engine
    engine.dispose()


def test_per_rule_counts_median_wait_outcomes_and_false_positive_share(engine):
    report = effectiveness(
        engine, date(2025, 5, 1), date(2025, 5, 31), rules=[("cluster-30d", "Cluster")]
    )
    rules = {rule["rule_id"]: rule for rule in report["rules"]}
    assert sorted(rules) == ["cluster-30d", "combined-indicator"]
    combined = rules["combined-indicator"]
    assert combined["opened"] == 5
    assert combined["acknowledged"] == 3
    assert combined["resolved"] == 3
    assert combined["median_hours_to_acknowledge"] == 5.0  # of 2, 4, 6 and 30 hours
    assert combined["outcomes"] == {
        "support_offered": 1,
        "referred": 0,
        "declined": 0,
        "no_action_needed": 0,
        "false_positive": 2,
    }
    assert combined["false_positive_share"] == 0.667
    empty = rules["cluster-30d"]
    assert (empty["opened"], empty["median_hours_to_acknowledge"]) == (0, None)
    assert empty["false_positive_share"] is None


def test_the_period_is_london_days_both_ends_included(engine):
    june = effectiveness(engine, date(2025, 6, 1), date(2025, 6, 1))
    assert {r["rule_id"]: r["opened"] for r in june["rules"]} == {
        "combined-indicator": 1,
        "trim-check": 1,
    }


def test_a_backwards_period_names_the_field(engine):
    with pytest.raises(PeriodError, match="^to: 2025-05-01 is before from: 2025-06-01"):
        effectiveness(engine, date(2025, 6, 1), date(2025, 5, 1))
