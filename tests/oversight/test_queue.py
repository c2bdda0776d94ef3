"""The wellbeing queue: filters, assignment to the team, and the week's follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.alerts.lifecycle import acknowledge
from engine.oversight.queue import (
    UNASSIGNED,
    QueueError,
    QueueFilter,
    assign,
    follow_ups_this_week,
    members,
    note_member,
    queue,
)
from engine.people.opt_out import opt_out
from models import Alert, AlertAssignment, AlertEvent, AlertFollowUp, table_of
from tests.engine.rulekit import default_pack
from tests.oversight.forcekit import NOW, alert_row, build_force

ROUTING = default_pack().routing  # escalate after 72h


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def force(database_url):
    force = build_force(database_url)
    with force.engine.begin() as conn:
        conn.execute(
            table_of(Alert).insert(),
            [
                alert_row(4, "S2", "open", at("2025-06-14T09:00"), severity="medium", rule="m"),
                alert_row(
                    5, "S3", "open", at("2025-06-01T09:00"), severity="low",
                    escalated_at=at("2025-06-04T09:00"), rule="l",
                ),
            ],
        )  # fmt: skip
        follow_ups = [
            (1, "72h", "2025-06-13T09:00", "sent"),
            (1, "28d", "2025-07-08T09:00", "pending"),
            (4, "72h", "2025-06-15T23:30", "pending"),  # Monday in London (BST)
            (5, "72h", "2025-06-10T09:00", "cancelled"),
        ]
        conn.execute(
            table_of(AlertFollowUp).insert(),
            [
                {"alert_id": a, "label": label, "due_at": at(due), "status": status}
                for a, label, due, status in follow_ups
            ],
        )
        note_member(conn, "W1", "Wendy Wellbeing", NOW)
        note_member(conn, "W2", "Will Wellbeing", NOW)
    yield force
    force.close()


def ids(rows):
    return [row["alert_id"] for row in rows]


def test_every_unresolved_alert_overdue_first_then_by_severity(force):
    rows = queue(force.engine, ROUTING, NOW)
    assert ids(rows) == [1, 5, 3, 4]  # 2 is resolved
    first = rows[0]
    assert first["overdue"] and not first["escalated"]
    assert first["display_name"] == "Person R2" and first["unit_id"] == "T4"
    assert first["unit_name"] == "Team Four" and first["age_hours"] == 123.0
    assert rows[1]["overdue"] and rows[1]["escalated"]
    assert not rows[2]["overdue"]  # acknowledged: not waiting to be seen


def test_the_filters(force):
    def filtered(**options):
        return ids(queue(force.engine, ROUTING, NOW, QueueFilter(**options)))

    assert filtered(severity="medium") == [4]
    assert filtered(overdue=True) == [1, 5]
    assert filtered(overdue=False) == [3, 4]
    assert filtered(escalated=True) == [5]
    assert filtered(escalated=False) == [1, 3, 4]
    assert filtered(older_than=timedelta(days=7)) == [5]
    assert filtered(unit_id="D1") == [5, 3, 4]  # T3 is below D1
    assert filtered(unit_id="T4") == [1]
    assert filtered(unit_id="A2", severity="high") == [1]


def test_a_bad_filter_names_its_field():
    with pytest.raises(QueueError, match="^severity: must be one of high, medium, low"):
        QueueFilter(severity="urgent")


def test_an_alert_is_assigned_to_a_team_member_and_the_event_recorded(force):
    with force.engine.begin() as conn:
        assign(conn, 4, "W1", actor="W2", at=NOW)
        assign(conn, 4, "W2", actor="W2", at=NOW + timedelta(minutes=5))
    rows = {r["alert_id"]: r for r in queue(force.engine, ROUTING, NOW)}
    assert rows[4]["assignee_id"] == "W2" and rows[4]["assignee_name"] == "Will Wellbeing"
    assert rows[1]["assignee_id"] is None
    mine = queue(force.engine, ROUTING, NOW, QueueFilter(assignee="W2"))
    assert ids(mine) == [4]
    assert ids(queue(force.engine, ROUTING, NOW, QueueFilter(assignee=UNASSIGNED))) == [1, 5, 3]
    with force.engine.connect() as conn:
        events = conn.execute(
            sa.select(table_of(AlertEvent).c.action, table_of(AlertEvent).c.detail)
            .where(table_of(AlertEvent).c.alert_id == 4)
            .order_by(table_of(AlertEvent).c.id)
        ).all()
    assert [e.action for e in events] == ["assigned", "assigned"]
    assert '"to": "W2"' in events[-1].detail
    assert [m["staff_id"] for m in members(force.engine)] == ["W1", "W2"]  # W: Wendy, Will


def test_only_team_members_and_unresolved_alerts_can_be_assigned(force):
    with force.engine.begin() as conn, pytest.raises(QueueError, match="^assignee: P1 is not"):
        assign(conn, 4, "P1", actor="W1", at=NOW)
    with force.engine.begin() as conn, pytest.raises(QueueError, match="^alert_id: alert 2 is"):
        assign(conn, 2, "W1", actor="W1", at=NOW)
    with force.engine.begin() as conn, pytest.raises(QueueError, match="^alert_id: no alert 99"):
        assign(conn, 99, "W1", actor="W1", at=NOW)


def test_an_opt_out_takes_the_assignment_with_the_alert(force):
    with force.engine.begin() as conn:
        assign(conn, 4, "W1", actor="W1", at=NOW)
    opt_out(force.engine, "S2", actor="admin", clock=lambda: NOW)
    with force.engine.connect() as conn:
        left = conn.execute(sa.select(table_of(AlertAssignment))).all()
    assert left == []
    assert 4 not in ids(queue(force.engine, ROUTING, NOW))


def test_acknowledging_takes_an_alert_out_of_the_overdue_list(force):
    with force.engine.begin() as conn:
        acknowledge(conn, 1, "W1", NOW)
    assert ids(queue(force.engine, ROUTING, NOW, QueueFilter(overdue=True))) == [5]


def test_follow_ups_due_this_london_week(force):
    rows = follow_ups_this_week(force.engine, NOW)
    # Monday 9 June to Sunday 15 June, London: 23:30 UTC on the 15th is Monday the 16th.
    assert [(r["alert_id"], r["label"], r["status"]) for r in rows] == [(1, "72h", "sent")]
    later = follow_ups_this_week(force.engine, NOW + timedelta(days=1))
    assert [(r["alert_id"], r["label"]) for r in later] == [(4, "72h")]
    assert later[0]["display_name"] == "Person S2"
