"""The dispatcher over real alerts, a real SMTP server and a real webhook: addresses from the
people history, digests, fallbacks, failures, unconfigured channels."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from engine.rules.pack import make_pack
from notifications.base import ChannelNotConfigured
from notifications.smtp import SmtpTransport
from notifications.teams import TeamsTransport
from tests.delivery.conftest import (
    BASE_URL,
    SENDER,
    WELLBEING,
    Dispatcher,
    open_alerts,
    outbox_t,
    queue,
    routing,
    utc,
)
from tests.delivery.servers import MailRecorder, SmtpServer, Webhook
from tests.engine.rulekit import add_people, default_pack, exposure, snapshot

NOON = utc("2026-05-12T11:00:00Z")  # 12:00 in London: outside quiet hours
CLUSTER = {"tier2plus_exposures_30d": 3}  # cluster-30d: medium, to the supervisor only
PEER = {"trauma_points_365d_role_percentile": 97.0, "trauma_points_365d": 40.0}  # low
EMAIL = outbox_t.c.channel == "email"


def links(text: str) -> set[int]:
    return {int(n) for n in re.findall(re.escape(BASE_URL) + r"/alerts/(\d+)", text)}


def mentions(card: dict) -> list[str]:
    content = card["attachments"][0]["content"]
    return [e["mentioned"]["id"] for e in content.get("msteams", {}).get("entities", [])]


def test_an_alert_reaches_the_supervisor_by_teams_and_email_and_wellbeing_by_email(dispatcher):
    (alert_id,) = open_alerts(
        dispatcher.engine, [snapshot("S1")], [exposure("S1", NOON - timedelta(hours=2))], at=NOON
    )

    report = dispatcher.run(NOON)

    assert (report.sent, report.failed, report.deferred) == (3, 0, 0)
    mails = {m.to[0]: m for m in dispatcher.smtp.mails}
    assert sorted(mails) == ["s2@force.example", WELLBEING]  # S1's supervisor, from the feed
    assert links(mails["s2@force.example"].text) == {alert_id}
    assert "Person S1" in mails["s2@force.example"].text
    (card,) = dispatcher.webhook.cards
    assert mentions(card) == ["s2@force.example"]
    assert links(json.dumps(card)) == {alert_id}
    rows = dispatcher.rows()
    assert {r.status for r in rows} == {"sent"}
    assert [r.message_key for r in rows] == [f"tt-alert-{r.id}" for r in rows]
    wellbeing_row = next(r for r in rows if r.recipient == WELLBEING)
    assert mails[WELLBEING].message_id == f"<tt-alert-{wellbeing_row.id}@force.example>"
    assert report.health["email"]["healthy"] and report.health["teams"]["healthy"]

    again = dispatcher.run(NOON + timedelta(minutes=1))
    assert (again.sent, again.failed, again.deferred) == (0, 0, 0)
    assert (len(dispatcher.smtp.mails), len(dispatcher.webhook.cards)) == (2, 1)


def test_a_recipients_new_alerts_go_as_one_digest_and_later_ones_wait_for_the_window(dispatcher):
    engine = dispatcher.engine
    first = open_alerts(engine, [snapshot("S1", **CLUSTER), snapshot("S4", **CLUSTER)], at=NOON)
    assert len(first) == 2

    report = dispatcher.run(NOON)

    assert report.sent == 2  # one email and one card to S2, each listing both alerts
    (mail,) = dispatcher.smtp.mails
    assert links(mail.text) == set(first)
    assert "Person S1" in mail.text and "Person S4" in mail.text
    (card,) = dispatcher.webhook.cards
    assert links(json.dumps(card)) == set(first)
    email_rows = dispatcher.rows(EMAIL)
    assert {r.message_key for r in email_rows} == {f"tt-digest-{email_rows[0].id}"}

    # Five minutes on, a new alert for S2 waits until 15 minutes after the digest went.
    later = NOON + timedelta(minutes=5)
    (third,) = open_alerts(engine, [snapshot("S1", **CLUSTER, **PEER)], at=later)
    held = dispatcher.run(later)
    assert (held.sent, held.deferred) == (0, 2)
    pending = dispatcher.rows(outbox_t.c.status == "pending")
    assert {r.due_at for r in pending} == {NOON + timedelta(minutes=15)}
    assert dispatcher.run(NOON + timedelta(minutes=14)).sent == 0
    done = dispatcher.run(NOON + timedelta(minutes=15))
    assert done.sent == 2
    assert links(dispatcher.smtp.mails[-1].text) == {third}
    assert links(json.dumps(dispatcher.webhook.cards[-1])) == {third}


def test_without_a_digest_window_each_alert_is_its_own_message(dispatcher):
    open_alerts(dispatcher.engine, [snapshot("S1", **CLUSTER), snapshot("S4", **CLUSTER)], at=NOON)
    report = dispatcher.run(NOON, routing=routing(digest=None))
    assert report.sent == 4
    assert sorted(len(links(m.text)) for m in dispatcher.smtp.mails) == [1, 1]


def test_a_permanent_teams_failure_falls_back_to_email_for_that_message(db, smtp):
    refusing = Webhook(lambda n: (400, {}) if n == 1 else (202, {}))
    try:
        teams_only = routing(
            recipients={
                "supervisor": {"channels": ["teams"]},
                "wellbeing": {"channels": ["email"], "email": WELLBEING},
            }
        )
        transports = {
            "email": SmtpTransport(smtp.url, SENDER, timeout=5),
            "teams": TeamsTransport(refusing.url, retries=0, timeout=5),
        }
        dispatcher = Dispatcher(db, smtp, refusing)
        pack = make_pack(list(default_pack().rules), teams_only)
        (alert_id,) = open_alerts(db, [snapshot("S1", **CLUSTER)], at=NOON, pack=pack)

        report = dispatcher.run(NOON, routing=teams_only, transports=transports)

        assert (report.sent, report.failed, report.fallbacks) == (1, 1, 1)
        teams_row, email_row = dispatcher.rows()
        assert (teams_row.channel, teams_row.status) == ("teams", "failed")
        assert "400" in teams_row.last_error and "sent by email instead" in teams_row.last_error
        assert (email_row.channel, email_row.status, email_row.recipient) == ("email", "sent", "S2")
        (mail,) = smtp.mails
        assert mail.to == ["s2@force.example"] and links(mail.text) == {alert_id}
        assert report.health["teams"]["healthy"] is False
        assert "400" in report.health["teams"]["last_error"]

        # The channel is healthy again after its next successful send.
        open_alerts(db, [snapshot("S4", **CLUSTER)], at=NOON + timedelta(hours=1), pack=pack)
        healed = dispatcher.run(
            NOON + timedelta(hours=1), routing=teams_only, transports=transports
        )
        assert healed.sent == 1 and healed.health["teams"]["healthy"] is True
    finally:
        refusing.stop()


def test_no_fallback_when_the_recipient_already_gets_the_same_message_by_email(db, smtp):
    refusing = Webhook(lambda n: (400, {}))
    try:
        dispatcher = Dispatcher(db, smtp, refusing)
        dispatcher.transports["teams"] = TeamsTransport(refusing.url, retries=0, timeout=5)
        open_alerts(db, [snapshot("S1", **CLUSTER)], at=NOON)
        report = dispatcher.run(NOON)
        assert (report.sent, report.failed, report.fallbacks) == (1, 1, 0)
        assert len(smtp.mails) == 1 and len(dispatcher.rows()) == 2
    finally:
        refusing.stop()


def test_transient_failures_wait_and_honour_retry_after_permanent_ones_fail(db, smtp, webhook):
    busy = Webhook(lambda n: (429, {"Retry-After": "120"}) if n == 1 else (202, {}))
    flaky = SmtpServer(MailRecorder(lambda n: "451 4.3.0 try later" if n == 1 else "250 OK"))
    try:
        dispatcher = Dispatcher(db, flaky, busy)
        open_alerts(db, [snapshot("S1", **CLUSTER)], at=NOON)
        report = dispatcher.run(NOON)
        assert (report.sent, report.failed, report.retrying) == (0, 0, 2)
        teams, email = dispatcher.rows()
        assert teams.due_at >= NOON + timedelta(seconds=120)  # Retry-After
        assert NOON + timedelta(seconds=15) <= email.due_at <= NOON + timedelta(seconds=30)
        assert "451" in email.last_error and teams.attempts == email.attempts == 1
        assert dispatcher.run(NOON + timedelta(seconds=60)).sent == 1  # the email's turn
        assert dispatcher.run(NOON + timedelta(seconds=120)).sent == 1
        assert {r.status for r in dispatcher.rows()} == {"sent"}
        assert [r.attempts for r in dispatcher.rows()] == [2, 2]
    finally:
        busy.stop()
        flaky.stop()

    refusing = SmtpServer(MailRecorder(lambda n: "550 5.1.1 no such mailbox"))
    try:
        (row_id,) = queue(db, recipient="gone@force.example", at=NOON + timedelta(hours=1))
        dispatcher = Dispatcher(db, refusing, webhook)
        report = dispatcher.run(NOON + timedelta(hours=1))
        assert report.failed == 1
        (row,) = dispatcher.rows(outbox_t.c.id == row_id)
        assert (row.status, row.attempts) == ("failed", 1) and "550" in row.last_error
        assert report.health["email"]["healthy"] is False
    finally:
        refusing.stop()


def test_an_unconfigured_channel_is_reported_and_its_messages_stay_pending(dispatcher):
    open_alerts(dispatcher.engine, [snapshot("S1", **CLUSTER)], at=NOON)
    missing = ChannelNotConfigured("TT_TEAMS_WEBHOOK_URL is not set (the Workflows webhook)")
    transports = {**dispatcher.transports, "teams": missing}

    report = dispatcher.run(NOON, transports=transports)

    assert report.sent == 1 and dispatcher.webhook.posts == 0
    assert report.unconfigured == {"teams": str(missing)}
    assert report.to_json()["unconfigured"]["teams"] == {"missing": str(missing), "pending": 1}
    (teams,) = dispatcher.rows(outbox_t.c.channel == "teams")
    assert (teams.status, teams.attempts) == ("pending", 0)
    # Configured later, it goes.
    assert dispatcher.run(NOON + timedelta(hours=1)).sent == 1
    assert dispatcher.webhook.posts == 1


def test_the_address_and_name_come_from_the_people_version_in_force(dispatcher):
    add_people(  # S2 changes address from June; a person with no address at all
        dispatcher.engine,
        {
            "staff_id": "S2",
            "valid_from": utc("2026-06-01T00:00:00Z").date(),
            "supervisor_id": "S3",
            "email": "sergeant.two@force.example",
            "display_name": "Sergeant Two",
        },
        {"staff_id": "S9", "supervisor_id": "S3", "email": None},
    )
    queue(dispatcher.engine, recipient="S2", at=NOON)
    june = utc("2026-06-02T11:00:00Z")
    queue(dispatcher.engine, recipient="S2", at=june, alert_id=7)
    queue(dispatcher.engine, recipient="S9", at=june, alert_id=8)

    assert dispatcher.run(NOON).sent == 1
    report = dispatcher.run(june)

    assert [m.to for m in dispatcher.smtp.mails] == [
        ["s2@force.example"],
        ["sergeant.two@force.example"],
    ]
    assert "Sergeant Two" in dispatcher.smtp.mails[1].text
    assert report.failed == 1
    (nobody,) = dispatcher.rows(outbox_t.c.recipient == "S9")
    assert nobody.status == "failed"
    assert "no email address for staff id S9" in nobody.last_error


def test_limit_caps_what_one_run_sends(dispatcher):
    queue(dispatcher.engine, recipient=WELLBEING, kind="escalation", at=NOON, count=5)
    assert dispatcher.run(NOON, limit=2).sent == 2
    assert dispatcher.run(NOON).sent == 3


def test_a_digest_split_across_batches_still_reaches_a_recipient_once_per_window(dispatcher):
    first = open_alerts(
        dispatcher.engine, [snapshot("S1", **CLUSTER), snapshot("S4", **CLUSTER)], at=NOON
    )
    report = dispatcher.run(NOON, batch=1)  # one row per claim: S2's rows in separate batches
    assert report.sent == 2 and report.deferred == 2  # one email, one card; the rest wait
    assert dispatcher.run(NOON + timedelta(minutes=15), batch=1).sent == 2
    assert [links(m.text) for m in dispatcher.smtp.mails] == [{first[0]}, {first[1]}]


def test_a_run_near_the_end_of_its_lease_gives_its_rows_back_unsent(dispatcher):
    queue(dispatcher.engine, recipient=WELLBEING, kind="escalation", at=NOON, count=3)
    report = dispatcher.run(NOON, lease=timedelta(seconds=60))  # no time left to send in
    assert report.sent == 0 and dispatcher.smtp.mails == []
    assert [(r.status, r.attempts, r.claimed_by) for r in dispatcher.rows()] == [
        ("pending", 0, None)
    ] * 3
    assert dispatcher.run(NOON).sent == 3
