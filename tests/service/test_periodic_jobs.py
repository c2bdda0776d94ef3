"""The jobs that run on their own intervals: pulls, dispatch, escalations, the checkpoint."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from engine.oversight import service_runs
from models import Alert, AuditCheckpoint, OutboxMessage, table_of
from tests.service.drops import OFFICER, write_exposure, write_team
from trauma_tracker.jobs import Jobs
from trauma_tracker.scheduler import build_scheduler
from trauma_tracker.settings import DeliverySettings, SqlSourceSettings
from trauma_tracker.sinks import MailSink, TeamsSink


def _recorded(engine) -> dict:
    with engine.connect() as conn:
        return {row["name"]: row for row in service_runs.runs(conn)}


def test_pull_takes_each_source_and_one_failing_does_not_stop_the_others(
    settings, service_db, tmp_path
):
    _, engine = service_db
    hr = f"sqlite:///{tmp_path / 'hr.sqlite'}"
    source_engine = sa.create_engine(hr)
    with source_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE org (code TEXT, parent TEXT, kind TEXT, title TEXT)"))
        conn.execute(sa.text("INSERT INTO org VALUES ('F', NULL, 'force', 'Force')"))
    source_engine.dispose()
    query = "SELECT code AS unit_id, parent AS parent_id, kind AS level, title AS name FROM org"
    sources = (
        SqlSourceSettings(name="broken", feed="units", url=hr, query="SELECT * FROM missing"),
        SqlSourceSettings(name="hr_units", feed="units", url=hr, query=query),
    )
    jobs = Jobs(replace(settings, sources=sources), engine)

    jobs.guarded("pull", jobs.pull)()

    recorded = _recorded(engine)
    assert recorded["source:hr_units"]["last_success_at"] is not None
    assert recorded["source:broken"]["failures"] == 1
    assert recorded["pull"]["failures"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT unit_id FROM units")).scalars().all() == ["F"]


def _sent(channel: str) -> float:
    value = REGISTRY.get_sample_value("tt_notifications_sent_total", {"channel": channel})
    return value or 0.0


@pytest.fixture
def sinks():
    mail, teams = MailSink().start(), TeamsSink().start()
    yield mail, teams
    mail.stop()
    teams.stop()


def test_dispatch_sends_what_is_due_and_counts_it_by_channel(settings, service_db, drop_dir, sinks):
    _, engine = service_db
    mail, teams = sinks
    settings = replace(
        settings,
        base_url="http://127.0.0.1:5000",
        delivery=DeliverySettings(
            smtp_url=mail.url, email_from="tt@force.example", teams_webhook_url=teams.url
        ),
    )
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-5")
    jobs = Jobs(settings, engine)
    jobs.intake()
    sent_before = _sent("email")

    assert jobs.dispatch() is True

    assert any("sam@force.example" in m.to for m in mail.mails)
    assert teams.posts
    outbox = table_of(OutboxMessage)
    with engine.connect() as conn:
        sent_email = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.status == "sent", outbox.c.channel == "email")
        ).scalar()
    assert sent_email >= 1
    assert _sent("email") == sent_before + sent_email


def test_escalations_and_follow_ups_are_queued_when_due(settings, service_db, drop_dir):
    _, engine = service_db
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-6")
    Jobs(settings, engine).intake()
    later = datetime.now(UTC) + timedelta(days=4)  # past escalate.after (72h) and the 72h follow-up

    assert Jobs(settings, engine, clock=lambda: later).escalations() is True

    alerts = table_of(Alert)
    outbox = table_of(OutboxMessage)
    with engine.connect() as conn:
        escalated = conn.execute(
            sa.select(alerts.c.id).where(
                alerts.c.staff_id == OFFICER, alerts.c.escalated_at.is_not(None)
            )
        ).all()
        kinds = set(conn.execute(sa.select(outbox.c.kind)).scalars())
    assert escalated
    assert {"escalation", "follow_up"} <= kinds


def test_the_checkpoint_is_signed_with_the_audit_key_and_skipped_without(
    settings, service_db, caplog
):
    _, engine = service_db
    assert Jobs(settings, engine).checkpoint() is False
    with caplog.at_level(logging.WARNING, logger="trauma_tracker.scheduler"):
        build_scheduler(Jobs(settings, engine), settings)
    assert "audit checkpoints skipped: TT_AUDIT_KEY is not set" in caplog.text

    keyed = replace(settings, audit_key="nightly signing key")
    assert Jobs(keyed, engine).checkpoint() is True
    scheduler = build_scheduler(Jobs(keyed, engine), keyed)
    assert scheduler.get_job("checkpoint") is not None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(AuditCheckpoint)).scalar() == 1
