"""`notify` and `outbox` on the command line, and which transport the settings choose."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from notifications.base import ChannelNotConfigured
from notifications.graph import GraphMailTransport
from notifications.smtp import SmtpTransport
from notifications.teams import TeamsTransport
from tests.delivery.conftest import BASE_URL, SENDER, WELLBEING, queue, utc
from tests.delivery.servers import MailRecorder, SmtpServer
from trauma_tracker.cli import main
from trauma_tracker.delivery import transports_from
from trauma_tracker.settings import DeliverySettings, Settings

NOON = utc("2026-05-12T11:00:00Z")


def cli(database_url: str, env: dict[str, str]):
    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(main, ["--db", database_url, *args], env=env)
        assert result.exit_code == code, result.output
        return result

    return run


def test_notify_names_the_missing_setting_and_leaves_those_messages_pending(database_url, db, smtp):
    queue(db, recipient="S2", channel="teams", at=NOON)
    queue(db, recipient=WELLBEING, at=NOON)
    env = {"TT_SMTP_URL": smtp.url, "TT_EMAIL_FROM": SENDER, "TT_BASE_URL": BASE_URL}
    run = cli(database_url, env)

    report = json.loads(run("notify", "--json", "--now", NOON.isoformat()).stdout)

    assert (report["sent"], report["failed"], report["deferred"]) == (1, 0, 0)
    teams = report["unconfigured"]["teams"]
    assert "TT_TEAMS_WEBHOOK_URL" in teams["missing"] and teams["pending"] == 1
    assert report["channels"]["email"]["healthy"] is True
    text = run("notify", "--now", NOON.isoformat()).stdout
    assert "0 sent, 0 failed, 0 deferred" in text
    assert "teams: not configured: TT_TEAMS_WEBHOOK_URL is not set" in text
    assert "1 message(s) stay pending" in text
    (pending,) = json.loads(run("outbox", "--json").stdout)
    assert (pending["channel"], pending["status"], pending["attempts"]) == ("teams", "pending", 0)


def test_notify_without_a_base_url_sends_nothing_and_says_why(database_url, db, smtp):
    queue(db, recipient=WELLBEING, at=NOON)
    run = cli(database_url, {"TT_SMTP_URL": smtp.url, "TT_EMAIL_FROM": SENDER})
    report = json.loads(run("notify", "--json", "--now", NOON.isoformat()).stdout)
    assert report["sent"] == 0 and smtp.mails == []
    assert "TT_BASE_URL" in report["unconfigured"]["email"]["missing"]


def test_outbox_lists_failures_with_their_error_and_retry_puts_one_back(database_url, db):
    refusing = SmtpServer(
        MailRecorder(lambda n: "550 5.1.1 mailbox unavailable" if n == 1 else "250 OK")
    )
    try:
        (row_id,) = queue(db, recipient="gone@force.example", at=NOON)
        env = {"TT_SMTP_URL": refusing.url, "TT_EMAIL_FROM": SENDER, "TT_BASE_URL": BASE_URL}
        run = cli(database_url, env)

        failed = run("notify", "--json", "--now", NOON.isoformat(), code=1)  # a problem found
        assert json.loads(failed.stdout)["failed"] == 1
        (row,) = json.loads(run("outbox", "--status", "failed", "--json").stdout)
        assert {
            k: row[k] for k in ("id", "alert_id", "channel", "recipient", "status", "attempts")
        } == {
            "id": row_id,
            "alert_id": 1000,
            "channel": "email",
            "recipient": "gone@force.example",
            "status": "failed",
            "attempts": 1,
        }
        assert "550" in row["last_error"] and row["due_at"].startswith("2026-05-12T11:00")
        assert row["channel_healthy"] is False and "550" in row["channel_error"]
        listing = run("outbox", "--status", "failed").stdout
        assert "last error:" in listing and "email: UNHEALTHY since" in listing

        assert "pending again" in run("outbox", "retry", str(row_id)).stdout
        run("outbox", "retry", str(row_id), code=1)  # not failed any more
        run("outbox", "retry", "999", code=2)  # no such message: bad input, as an unknown alert
        later = (NOON + timedelta(days=400)).isoformat()  # after the retry's due time
        assert json.loads(run("notify", "--json", "--now", later).stdout)["sent"] == 1
        assert json.loads(run("outbox", "--status", "all", "--json").stdout)[0]["status"] == "sent"
        assert "email: healthy" in run("outbox", "--status", "sent").stdout
    finally:
        refusing.stop()


def test_email_goes_by_smtp_when_set_else_by_graph_and_says_what_is_missing():
    smtp = transports_from(DeliverySettings(smtp_url="smtp://127.0.0.1:2525", email_from=SENDER))
    assert isinstance(smtp["email"], SmtpTransport)
    assert isinstance(smtp["teams"], ChannelNotConfigured)
    assert "TT_TEAMS_WEBHOOK_URL" in str(smtp["teams"])

    graph_settings = DeliverySettings(
        graph_tenant_id="tenant",
        graph_client_id="client",
        graph_client_secret="secret",
        graph_sender="tracker@force.example",
        teams_webhook_url="https://prod.example/workflows/x?sig=y",
    )
    both = transports_from(graph_settings)
    assert isinstance(both["email"], GraphMailTransport)
    assert isinstance(both["teams"], TeamsTransport)

    half = transports_from(DeliverySettings(graph_tenant_id="tenant", graph_client_id="c"))
    assert isinstance(half["email"], ChannelNotConfigured)
    assert "TT_GRAPH_CLIENT_SECRET, TT_GRAPH_SENDER not set" in str(half["email"])
    none = transports_from(Settings().delivery)
    assert "TT_SMTP_URL is not set" in str(none["email"])
    no_sender = transports_from(DeliverySettings(smtp_url="smtp://127.0.0.1:2525"))
    assert "TT_EMAIL_FROM" in str(no_sender["email"])
    bad = transports_from(DeliverySettings(smtp_url="ftp://x", email_from=SENDER))
    assert "TT_SMTP_URL must look like smtp://" in str(bad["email"])
    assert "secret" not in repr(both) and "sig=y" not in repr(both)
