"""Routing in delivery: quiet hours across the clock changes, the severity override,
escalation timing, follow-ups, `self`, and an alert that would reach nobody."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import lifecycle as alert_ops
from engine.delivery.quiet_hours import quiet_until
from engine.rules.pack import load_pack, make_pack, pack_from_definitions
from engine.yamlfile import RuleFileError
from models import AlertFollowUp, table_of
from tests.delivery.conftest import ROUTING, WELLBEING, open_alerts, outbox_t, queue, routing, utc
from tests.engine.rulekit import copy_rules, default_pack, exposure, snapshot

QUIET = ROUTING["quiet_hours"]  # 20:00-07:00 Europe/London, except high


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # Spring forward, Sunday 29 March 2026: 07:00 BST is 06:00 UTC.
        ("2026-03-28T20:30:00Z", "2026-03-29T06:00:00Z"),  # 20:30 GMT
        ("2026-03-29T00:30:00Z", "2026-03-29T06:00:00Z"),  # 00:30 GMT, before the change
        ("2026-03-29T05:59:00Z", "2026-03-29T06:00:00Z"),  # 06:59 BST
        ("2026-03-29T06:00:00Z", None),  # 07:00 BST: quiet hours are over
        ("2026-03-29T06:30:00Z", None),  # 07:30 BST (06:30 by the UTC clock: still not quiet)
        ("2026-03-29T18:59:00Z", None),  # 19:59 BST
        ("2026-03-29T19:00:00Z", "2026-03-30T06:00:00Z"),  # 20:00 BST
        # Fall back, Sunday 25 October 2026: 07:00 GMT is 07:00 UTC; the night is an hour longer.
        ("2026-10-24T19:00:00Z", "2026-10-25T07:00:00Z"),  # 20:00 BST
        ("2026-10-24T18:59:00Z", None),  # 19:59 BST
        ("2026-10-25T00:30:00Z", "2026-10-25T07:00:00Z"),  # 01:30 BST, the first time
        ("2026-10-25T01:30:00Z", "2026-10-25T07:00:00Z"),  # 01:30 GMT, the second time
        ("2026-10-25T06:30:00Z", "2026-10-25T07:00:00Z"),  # 06:30 GMT: still quiet
        ("2026-10-25T07:00:00Z", None),
        ("2026-10-25T19:59:00Z", None),  # 19:59 GMT
        ("2026-10-25T20:00:00Z", "2026-10-26T07:00:00Z"),  # 20:00 GMT
    ],
)
def test_quiet_hours_are_london_wall_clock_time_across_both_clock_changes(now, until):
    assert quiet_until(QUIET, utc(now)) == (utc(until) if until else None)


def test_quiet_hours_inside_one_day_and_none_at_all():
    lunch = {"from": "12:00", "to": "13:00", "timezone": "Europe/London"}
    assert quiet_until(lunch, utc("2026-07-01T11:30:00Z")) == utc("2026-07-01T12:00:00Z")
    assert quiet_until(lunch, utc("2026-07-01T12:00:00Z")) is None
    assert quiet_until(None, utc("2026-07-01T23:00:00Z")) is None


def test_messages_inside_quiet_hours_wait_for_their_end_except_high_severity(dispatcher):
    night = utc("2026-03-28T21:00:00Z")  # Saturday 21:00 GMT, the night the clocks go forward
    medium = open_alerts(dispatcher.engine, [snapshot("S1", tier2plus_exposures_30d=3)], at=night)
    (trim,) = open_alerts(
        dispatcher.engine, [snapshot("S4")], [exposure("S4", night - timedelta(hours=1))], at=night
    )

    report = dispatcher.run(night)

    # The TRiM check is high: it goes now (a card and an email to S2, an email to wellbeing);
    # the cluster alert (medium) waits until 07:00 BST.
    assert (report.sent, report.deferred) == (3, 2)
    held = dispatcher.rows(outbox_t.c.status == "pending")
    assert {r.alert_id for r in held} == set(medium)
    assert {r.due_at for r in held} == {utc("2026-03-29T06:00:00Z")}
    assert dispatcher.run(utc("2026-03-29T05:59:00Z")).sent == 0
    morning = dispatcher.run(utc("2026-03-29T06:00:00Z"))
    assert morning.sent == 2
    assert {r.status for r in dispatcher.rows()} == {"sent"}
    assert len(dispatcher.smtp.mails) == 3 and len(dispatcher.webhook.cards) == 2
    assert trim not in medium


def test_a_message_due_in_the_long_october_night_waits_until_seven_gmt(dispatcher):
    queue(dispatcher.engine, recipient=WELLBEING, severity="low", at=utc("2026-10-24T22:00:00Z"))
    report = dispatcher.run(utc("2026-10-25T06:30:00Z"))  # 06:30 GMT
    assert (report.sent, report.deferred) == (0, 1)
    (row,) = dispatcher.rows()
    assert row.due_at == utc("2026-10-25T07:00:00Z") and row.attempts == 0
    assert dispatcher.run(utc("2026-10-25T07:00:00Z")).sent == 1


def test_escalation_goes_after_the_routing_delay_through_the_same_dispatcher(dispatcher):
    opened = utc("2026-05-12T11:00:00Z")
    (alert_id,) = open_alerts(
        dispatcher.engine, [snapshot("S1", tier2plus_exposures_30d=3)], at=opened
    )
    dispatcher.run(opened)
    with dispatcher.engine.begin() as conn:
        assert (
            alert_ops.escalate_overdue(conn, dispatcher.routing, opened + timedelta(hours=71)) == []
        )
    assert dispatcher.run(opened + timedelta(hours=71)).sent == 0
    due = opened + timedelta(hours=72)
    with dispatcher.engine.begin() as conn:
        assert alert_ops.escalate_overdue(conn, dispatcher.routing, due) == [alert_id]

    report = dispatcher.run(due)

    assert report.sent == 1
    mail = dispatcher.smtp.mails[-1]
    assert mail.to == [WELLBEING] and f"/alerts/{alert_id}" in mail.text
    (row,) = dispatcher.rows(outbox_t.c.kind == "escalation")
    assert (row.status, row.message_key) == ("sent", f"tt-escalation-{row.id}")


def follow_ups(engine):
    with engine.connect() as conn:
        table = table_of(AlertFollowUp)
        return {
            (r.alert_id, r.label): r.status
            for r in conn.execute(sa.select(table).order_by(table.c.id))
        }


def test_a_follow_up_is_sent_only_when_its_message_was_and_not_at_all_if_not_needed(dispatcher):
    engine = dispatcher.engine
    at = utc("2026-05-12T09:00:00Z")
    (kept,) = open_alerts(engine, [snapshot("S1")], [exposure("S1", at, ref="INC-1")], at=at)
    (dropped,) = open_alerts(engine, [snapshot("S4")], [exposure("S4", at, ref="INC-2")], at=at)
    dispatcher.run(at)
    day3 = at + timedelta(hours=72)
    with engine.begin() as conn:
        assert len(alert_ops.send_follow_ups(conn, dispatcher.routing, day3)) == 2
    assert follow_ups(engine)[(kept, "72h")] == "queued"
    with engine.begin() as conn:  # resolved as not needed before its reminder went
        alert_ops.resolve(conn, dropped, "S2", "no_action_needed", day3)

    # Channels down first: nothing is sent, so nothing is marked sent.
    down = {"email": dispatcher.transports["email"], "teams": dispatcher.transports["teams"]}
    dispatcher.webhook.answer = lambda n: (503, {"Retry-After": "30"})
    dispatcher.run(day3, transports={"teams": down["teams"]})
    assert follow_ups(engine)[(kept, "72h")] == "queued"

    dispatcher.webhook.answer = None
    report = dispatcher.run(day3 + timedelta(minutes=5))

    assert follow_ups(engine) == {
        (kept, "72h"): "sent",
        (kept, "28d"): "pending",
        (dropped, "72h"): "cancelled",
        (dropped, "28d"): "cancelled",
    }
    reminders = dispatcher.rows(outbox_t.c.kind == "follow_up")
    assert {(r.alert_id, r.status) for r in reminders} == {(kept, "sent"), (dropped, "cancelled")}
    assert report.sent == 3  # to S2 by Teams and email, to wellbeing
    texts = [m.text for m in dispatcher.smtp.mails[-2:]]
    assert all(f"/alerts/{kept}" in t and f"/alerts/{dropped}" not in t for t in texts)


def test_a_follow_up_row_for_an_alert_resolved_as_not_needed_is_cancelled_at_dispatch(dispatcher):
    engine = dispatcher.engine
    at = utc("2026-05-12T09:00:00Z")
    (alert_id,) = open_alerts(engine, [snapshot("S1")], [exposure("S1", at)], at=at)
    dispatcher.run(at)
    with engine.begin() as conn:
        alert_ops.send_follow_ups(conn, dispatcher.routing, at + timedelta(hours=72))
        # Resolved behind the outbox's back (as an older version would have): still not sent.
        conn.execute(
            alert_ops.alerts_t.update()
            .where(alert_ops.alerts_t.c.id == alert_id)
            .values(status="resolved", outcome="false_positive", open_key=None)
        )
    report = dispatcher.run(at + timedelta(hours=72))
    assert (report.sent, report.cancelled) == (0, 3)
    # Never sent, and no longer queued: both of the alert's follow-ups are off.
    assert follow_ups(engine) == {(alert_id, "72h"): "cancelled", (alert_id, "28d"): "cancelled"}
    with engine.begin() as conn:  # ...so the 28-day one is never queued either
        assert alert_ops.send_follow_ups(conn, dispatcher.routing, at + timedelta(days=29)) == []


def test_self_is_the_person_themself_by_email(dispatcher, tmp_path):
    rules = copy_rules(tmp_path / "rules")
    cluster = rules / "interventions" / "cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace("notify: [supervisor]", "notify: [self, supervisor]")
    )
    pack = load_pack(rules)
    at = utc("2026-05-12T11:00:00Z")
    (alert_id,) = open_alerts(
        dispatcher.engine, [snapshot("S1", tier2plus_exposures_30d=3)], at=at, pack=pack
    )

    dispatcher.run(at)

    assert sorted(m.to[0] for m in dispatcher.smtp.mails) == [
        "s1@force.example",
        "s2@force.example",
    ]
    assert {r.recipient for r in dispatcher.rows(outbox_t.c.channel == "email")} == {"S1", "S2"}
    with dispatcher.engine.connect() as conn:
        (listed,) = alert_ops.list_alerts(conn, "open")
    assert listed["recipients"] == ["S1", "S2"] and listed["alert_id"] == alert_id


def test_an_alert_with_no_supervisor_in_force_goes_to_the_escalation_recipient(dispatcher):
    at = utc("2026-05-12T11:00:00Z")
    open_alerts(dispatcher.engine, [snapshot("S3", tier2plus_exposures_30d=3)], at=at)  # no boss
    dispatcher.run(at)
    assert [m.to for m in dispatcher.smtp.mails] == [[WELLBEING]]


def test_an_alert_that_would_reach_nobody_fails_loudly(dispatcher, tmp_path):
    no_escalation = {k: v for k, v in ROUTING.items() if k != "escalate"}
    pack = pack_from_definitions(default_pack().definitions(), no_escalation)
    at = utc("2026-05-12T11:00:00Z")
    with pytest.raises(alert_ops.NoRecipient, match="S3 .* would reach nobody"):
        open_alerts(
            dispatcher.engine, [snapshot("S3", tier2plus_exposures_30d=3)], at=at, pack=pack
        )
    with dispatcher.engine.connect() as conn:
        assert alert_ops.list_alerts(conn, "all") == []  # nothing half-written

    # The rule files say so before any evaluation: `rules validate` names the rules.
    rules = copy_rules(tmp_path / "rules")
    text = (rules / "routing.yaml").read_text()
    (rules / "routing.yaml").write_text(text.replace("escalate: {after: 72h, to: wellbeing}", ""))
    with pytest.raises(RuleFileError) as error:
        load_pack(rules)
    problems = [str(p) for p in error.value.problems]
    assert len(problems) == 2  # cluster-30d and peer-high-exposure notify only the supervisor
    assert all("notifies only the supervisor" in p and "escalate.to" in p for p in problems)
    assert make_pack(list(default_pack().rules), routing()).routing.escalate_to == "wellbeing"


def test_self_can_have_channels_of_its_own_in_routing(dispatcher, tmp_path):
    rules = copy_rules(tmp_path / "rules")
    cluster = rules / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("notify: [supervisor]", "notify: [self]"))
    text = (rules / "routing.yaml").read_text()
    (rules / "routing.yaml").write_text(
        text.replace("recipients:\n", "recipients:\n  self: {channels: [teams]}\n")
    )
    pack = load_pack(rules)
    at = utc("2026-05-12T11:00:00Z")
    open_alerts(dispatcher.engine, [snapshot("S1", tier2plus_exposures_30d=3)], at=at, pack=pack)
    report = dispatcher.run(at, routing=pack.routing)
    assert report.sent == 1 and dispatcher.smtp.mails == []
    (card,) = dispatcher.webhook.cards
    entities = card["attachments"][0]["content"]["msteams"]["entities"]
    assert [e["mentioned"]["id"] for e in entities] == ["s1@force.example"]
