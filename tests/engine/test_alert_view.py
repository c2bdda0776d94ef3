"""Alerts as the web shows them, the access log, and conversation requests (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import lifecycle as alert_ops
from engine.alerts.decisions import decide
from engine.alerts.view import (
    alert_detail,
    alerts_for_recipient,
    has_received_alerts,
    recipients_of,
    words,
)
from engine.people.access_log import AccessReasonError, access_log_for, check_reason, record_view
from engine.people.conversations import ConversationError, request_conversation, requests_of
from models import OutboxMessage, table_of
from tests.engine.rulekit import AS_OF, add_people, database, default_pack, snapshot

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def db(database_url):
    """S1 and S4 report to S2 (S2 to S3); S1 meets the cluster rule, S4 the combined one."""
    engine = database(database_url)
    add_people(
        engine,
        {"staff_id": "S1", "supervisor_id": "S2", "display_name": "Alex One"},
        {"staff_id": "S2", "supervisor_id": "S3", "display_name": "Sam Two"},
        {"staff_id": "S3", "supervisor_id": None, "display_name": "Ira Three"},
        {"staff_id": "S4", "supervisor_id": "S2", "display_name": "Bo Four"},
    )
    with engine.begin() as conn:
        decide(
            conn,
            default_pack(),
            [
                snapshot("S1", tier2plus_exposures_30d=3),
                snapshot("S4", trauma_points_90d=14.0, cancelled_rest_days_90d=3),
            ],
            [],
            as_of=AS_OF,
            now=AS_OF,
        )
    yield engine
    engine.dispose()


def alert_of(engine, staff_id):
    (row,) = [a for a in alerts_for_recipient(engine, None, "all") if a["staff_id"] == staff_id]
    return row


def test_alert_detail_explains_each_condition_in_words_with_recipients_and_history(db):
    alert_id = alert_of(db, "S4")["alert_id"]
    detail = alert_detail(db, alert_id)
    assert detail["display_name"] == "Bo Four" and detail["status"] == "open"
    by_field = {c["field"]: c for c in detail["explanation"]}
    points = by_field["trauma_points_90d"]
    assert (points["operator"], points["threshold"], points["actual"], points["result"]) == (
        ">=", 12, 14.0, True,
    )  # fmt: skip
    assert points["words"] == "90-day points 14, at or above 12"
    assert by_field["sickness_days_365d"]["result"] is False
    assert by_field["sickness_days_365d"]["words"].startswith("sickness days in 12 months 0, not")
    assert "90-day points 14, at or above 12" in detail["reasons"]
    assert detail["recipients"] == recipients_of({"recipients": json.dumps(detail["sent_to"])})
    assert "S2" in detail["recipients"]
    assert {r["display_name"] for r in detail["sent_to"] if r["to"] == "S2"} == {"Sam Two"}
    assert {d["recipient"] for d in detail["deliveries"]} >= {"S2"}
    assert [h["action"] for h in detail["history"]] == ["opened"]

    with db.begin() as conn:
        alert_ops.acknowledge(conn, alert_id, "S2", AS_OF + DAY)
        alert_ops.resolve(conn, alert_id, "S2", "support_offered", AS_OF + 2 * DAY, "talked")
    detail = alert_detail(db, alert_id)
    assert [(h["action"], h["actor_name"]) for h in detail["history"]] == [
        ("opened", "system"), ("acknowledged", "Sam Two"), ("resolved", "Sam Two"),
    ]  # fmt: skip
    assert (detail["outcome"], detail["outcome_label"], detail["note"]) == (
        "support_offered", "Support offered", "talked",
    )  # fmt: skip
    assert alert_detail(db, 99999) is None


def test_words_for_each_kind_of_condition():
    leaf = {"field": "trauma_points_365d", "op": ">=", "value": 12, "actual": 14.0, "result": True}
    assert words(leaf) == "12-month points 14, at or above 12"
    leaf = {"field": "absent_now", "op": "==", "value": True, "actual": False, "result": False}
    assert words(leaf) == "absent now no, not equal to yes"
    leaf = {"field": "role_group", "op": "in", "value": ["a", "b"], "actual": None, "result": False}
    assert words(leaf) == "role group missing, not one of a, b"


def test_alerts_for_a_recipient_open_first_and_overdue_marked(db):
    mine = alerts_for_recipient(db, "S2", "all", now=AS_OF + 4 * DAY, escalate_after=3 * DAY)
    assert {a["staff_id"] for a in mine} == {"S1", "S4"}
    assert all(a["overdue"] and a["title"] for a in mine)
    assert alerts_for_recipient(db, "S3", "all") == []  # not sent to S3
    assert alerts_for_recipient(db, "S2", "resolved") == []
    first = mine[0]["alert_id"]
    with db.begin() as conn:
        alert_ops.resolve(conn, first, "S2", "declined", AS_OF + DAY)
    mine = alerts_for_recipient(db, "S2", "all", now=AS_OF + 4 * DAY, escalate_after=3 * DAY)
    assert [a["status"] for a in mine] == ["open", "resolved"]
    assert mine[1]["overdue"] is False
    with pytest.raises(ValueError, match="status"):
        alerts_for_recipient(db, "S2", "closed")
    # an id that is a prefix of another's never matches it
    assert alerts_for_recipient(db, "S", "all") == []
    # the rows carry the CLI's `alerts --json` fields, with the same values
    with db.connect() as conn:
        cli = {a["alert_id"]: a for a in alert_ops.list_alerts(conn, "all")}
        assert has_received_alerts(conn, "S2") and not has_received_alerts(conn, "S1")
    web = {a["alert_id"]: a for a in alerts_for_recipient(db, None, "all")}
    assert set(web) == set(cli)
    for alert_id, row in cli.items():
        same = {k: web[alert_id][k] for k in row if k != "opened_at"}
        assert same == {k: v for k, v in row.items() if k != "opened_at"}


def test_access_log_records_reasons_and_the_person_sees_who_looked(db):
    with db.begin() as conn:
        record_view(conn, "S2", "S1", "welfare_conversation", None, AS_OF)
        record_view(conn, "S3", "S1", "other", "  checking a handover ", AS_OF + DAY)
        assert record_view(conn, "S1", "S1", "audit", None, AS_OF) is None  # own record
    log = access_log_for(db, "S1")
    assert [(e["viewer_name"], e["reason"], e["note"]) for e in log] == [
        ("Ira Three", "other", "checking a handover"),
        ("Sam Two", "welfare_conversation", None),
    ]
    assert log[0]["at"] == "2025-06-03T09:00:00Z"
    assert access_log_for(db, "S4") == []
    for reason, note, field in [(None, None, "reason"), ("curious", None, "reason"),
                                ("other", " ", "note"), ("audit", "x" * 501, "note")]:  # fmt: skip
        with pytest.raises(AccessReasonError) as caught:
            check_reason(reason, note)
        assert caught.value.field == field


def test_conversation_requests_go_through_the_outbox_without_detail(db):
    routing = default_pack().routing
    ids = request_conversation(db, "S1", "supervisor", routing, AS_OF)
    assert ids
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(table_of(OutboxMessage)).where(table_of(OutboxMessage).c.id.in_(ids))
        ).all()
    assert {r.recipient for r in rows} == {"S2"} and {r.alert_id for r in rows} == {None}
    assert {r.kind for r in rows} == {"conversation_request"}
    assert json.loads(rows[0].payload) == {
        "kind": "conversation_request",
        "staff_id": "S1",
        "name": "Alex One",
        "title": "asked for a welfare conversation",
        "severity": "low",
        "link": "/people/S1",
    }
    # pressing the button again straight away sends nothing more; later it is a new request
    assert request_conversation(db, "S1", "supervisor", routing, AS_OF + 5 * MINUTE) == ids
    again = request_conversation(db, "S1", "supervisor", routing, AS_OF + 11 * MINUTE)
    assert again and set(again).isdisjoint(ids)
    wellbeing = request_conversation(db, "S1", "wellbeing", routing, AS_OF + DAY)
    with db.connect() as conn:
        to = conn.execute(
            sa.select(table_of(OutboxMessage).c.recipient).where(
                table_of(OutboxMessage).c.id.in_(wellbeing)
            )
        ).scalars()
        assert set(to) == {routing.recipients["wellbeing"].email}
    assert [(r["to"], r["status"]) for r in requests_of(db, "S1")] == [
        ("wellbeing", "queued"), ("supervisor", "queued"), ("supervisor", "queued"),
    ]  # fmt: skip
    with pytest.raises(ConversationError, match="no supervisor"):
        request_conversation(db, "S3", "supervisor", routing, AS_OF)
    with pytest.raises(ConversationError, match="to:"):
        request_conversation(db, "S1", "everyone", routing, AS_OF)
