"""An evaluation runs the intervention rules on the figures it computes (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts.audit import verify
from engine.people.opt_out import opt_out
from tests.forcedata import Force, deployment, incident, person, utc
from trauma_tracker.settings import SHIPPED_RULES

AS_OF = "2025-07-01T11:00:00Z"
T = utc(AS_OF)


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(
        person("S1", supervisor_id="S9"),
        person("S2", supervisor_id="S9"),
        person("S3", supervisor_id="S9"),
        person("S9", rank_or_grade="Sergeant"),
    )
    yield force
    force.close()


def serious(urn: str, staff_id: str, days_ago: float):
    """A tier-2 exposure (a suicide, attended) `days_ago` before the evaluation time."""
    moment = (T - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    return incident(urn, moment, "SUICIDE"), deployment(urn, staff_id, "attending", moment)


def alerts(force, rule_id: str) -> dict[str, list[str]]:
    with force.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT staff_id, recipients FROM alerts WHERE rule_id = :r ORDER BY staff_id"),
            {"r": rule_id},
        )
        return {row.staff_id: row.recipients for row in rows}


def test_the_cluster_rule_fires_for_three_serious_exposures_in_30_days_and_not_two(force):
    force.add(
        *serious("A1", "S1", 1),
        *serious("A2", "S1", 10),
        *serious("A3", "S1", 29.9),  # three inside 30 days
        *serious("B1", "S2", 1),
        *serious("B2", "S2", 10),
        *serious("B3", "S2", 30),  # exactly 30 days ago: outside, so two
        *serious("C1", "S3", 5),
        *serious("C2", "S3", 6),
    )

    report = force.evaluate(AS_OF, rules_dir=SHIPPED_RULES)

    assert report.rules_run and report.rule_disagreements == []
    assert force.snapshot("S1")["tier2plus_exposures_30d"] == 3
    assert force.snapshot("S2")["tier2plus_exposures_30d"] == 2
    cluster = alerts(force, "cluster-30d")
    assert list(cluster) == ["S1"]
    assert '"to": "S9"' in cluster["S1"]  # the supervisor in force

    # A third serious exposure for S2 later on opens theirs.
    force.add(*serious("B4", "S2", -0.5))
    later = force.evaluate(T + timedelta(days=1), rules_dir=SHIPPED_RULES)
    assert later.alerts_opened >= 1
    assert list(alerts(force, "cluster-30d")) == ["S1", "S2"]


def test_without_a_rules_folder_the_rules_do_not_run(force):
    force.add(*serious("A1", "S1", 1), *serious("A2", "S1", 2), *serious("A3", "S1", 3))
    report = force.evaluate(AS_OF)
    assert not report.rules_run and report.rules_skipped == "no rules folder given"
    assert report.to_json()["ruleset"] is None
    assert alerts(force, "cluster-30d") == {}


def test_opting_out_deletes_the_persons_alerts_and_their_notifications(force):
    force.add(
        *serious("A1", "S1", 1),
        *serious("A2", "S1", 2),
        *serious("A3", "S1", 3),
        *serious("B1", "S2", 1),
        *serious("B2", "S2", 2),
        *serious("B3", "S2", 3),
    )
    report = force.evaluate(AS_OF, rules_dir=SHIPPED_RULES)
    assert set(alerts(force, "cluster-30d")) == {"S1", "S2"}

    def alert_rows(table: str, staff_id: str) -> int:
        with force.engine.connect() as conn:
            return conn.execute(
                sa.text(
                    f"SELECT COUNT(*) FROM {table} t JOIN alerts a ON a.id = t.alert_id "
                    "WHERE a.staff_id = :s"
                ),
                {"s": staff_id},
            ).scalar_one()

    assert alert_rows("outbox", "S1") > 0 and alert_rows("alert_events", "S1") > 0
    with force.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM alerts WHERE staff_id = 'S1'")).scalars())

    assert opt_out(force.engine, "S1", actor="hr.admin", clock=lambda: T + timedelta(hours=1))

    assert force.count("alerts", "S1") == 0
    assert force.count("rule_marks", "S1") == 0 and force.count("exposure_marks", "S1") == 0
    with force.engine.connect() as conn:
        for table in ("outbox", "alert_events", "alert_follow_ups"):
            query = (
                sa.select(sa.func.count())
                .select_from(sa.table(table, sa.column("alert_id")))
                .where(sa.column("alert_id").in_(ids))
            )
            left = conn.execute(query).scalar_one()
            assert left == 0, table
        checked = verify(conn)
        erased = conn.execute(
            sa.text("SELECT COUNT(*) FROM decisions WHERE staff_id = 'S1' AND input IS NULL")
        ).scalar_one()
    assert checked.ok and checked.problem is None
    assert checked.entries == report.decisions and erased == checked.erased > 0
    # S2's alert and its notifications are untouched.
    assert list(alerts(force, "cluster-30d")) == ["S2"] and alert_rows("outbox", "S2") > 0
    # Evaluating again makes nothing about S1.
    again = force.evaluate(T + timedelta(hours=2), rules_dir=SHIPPED_RULES)
    assert again.rules_run
    assert force.count("alerts", "S1") == 0 and force.count("snapshots", "S1") == 0
