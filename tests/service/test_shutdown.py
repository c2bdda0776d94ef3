"""`run` stops cleanly on SIGTERM: the job in progress finishes, nothing is left claimed."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from models import Incident, OutboxMessage, table_of
from models.db import make_engine, migrate
from tests.service.drops import OTHER_OFFICER, write_exposure, write_team
from tests.service.processes import log_lines, start, wait_for_log
from trauma_tracker.sinks import free_port


@pytest.mark.slow
def test_sigterm_lets_the_ingest_in_progress_finish_and_leaves_nothing_claimed(
    database_url, rules_dir, drop_dir, tmp_path
):
    engine = make_engine(database_url)
    migrate(engine)
    write_team(drop_dir)
    log = tmp_path / "run.log"
    service = start(
        ["run", "--port", str(free_port())],
        log,
        TT_DATABASE_URL=database_url,
        TT_RULES_DIR=str(rules_dir),
        TT_DROP_DIRS=str(drop_dir),
        TT_POLL_SECONDS="1",
        TT_SECRET_KEY="shutdown test key, long enough",
    )
    try:
        wait_for_log(log, "file ingested", count=2)  # the team
        write_exposure(drop_dir, "INC-7", staff_id=OTHER_OFFICER, other_incidents=100_000)
        wait_for_log(log, "intake: files waiting", count=2)  # the large file is being stored

        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=120) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()

    messages = [line.get("message") for line in log_lines(log)]
    # The file being stored when the stop came was stored whole, before the scheduler ended.
    assert messages.index("scheduler stopping: waiting for the jobs in progress") < (
        messages.index("scheduler stopped")
    )
    assert (drop_dir / "processed" / "cc_incidents_INC-7.csv").exists()
    incidents = table_of(Incident)
    outbox = table_of(OutboxMessage)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar() == 100_001
        claimed = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "claimed")
        ).scalar()
    assert claimed == 0
    # The deployments file either went in after it, or waits whole for the next start.
    deployments = "cc_deployments_INC-7.csv"
    assert (drop_dir / deployments).exists() != (drop_dir / "processed" / deployments).exists()
    engine.dispose()


@pytest.mark.slow
def test_sigterm_lets_a_send_in_progress_finish_and_leaves_nothing_claimed(
    database_url, rules_dir, drop_dir, tmp_path
):
    from tests.service.processes import wait_until
    from trauma_tracker.jobs import Jobs
    from trauma_tracker.settings import Settings
    from trauma_tracker.sinks import MailSink

    engine = make_engine(database_url)
    migrate(engine)
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-8")
    settings = Settings(database_url=database_url, rules_dir=rules_dir, drop_dirs=(drop_dir,))
    Jobs(settings, engine).intake()  # alerts opened, their notifications queued
    mail = MailSink(delay=3.0).start()  # a slow mail server: each message takes 3 s
    log = tmp_path / "scheduler.log"
    scheduler = start(
        ["scheduler"],
        log,
        TT_DATABASE_URL=database_url,
        TT_RULES_DIR=str(rules_dir),
        TT_SMTP_URL=mail.url,
        TT_EMAIL_FROM="tt@force.example",
        TT_BASE_URL="http://127.0.0.1:5000",
    )
    try:
        assert wait_until(lambda: mail.receiving > 0, 60), log.read_text()[-3000:]
        scheduler.send_signal(signal.SIGTERM)  # while the first message is being sent
        assert scheduler.wait(timeout=120) == 0
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
        mail.stop()

    assert mail.mails  # the message in progress was sent, not cut off
    outbox = table_of(OutboxMessage)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.channel, outbox.c.status, outbox.c.message_key))
        rows = rows.all()
    assert not [row for row in rows if row.status == "claimed"]
    # One message per message key (a digest carries several rows): each went out once.
    sent_keys = {row.message_key for row in rows if row.channel == "email" and row.status == "sent"}
    assert len(sent_keys) == len(mail.mails)
    engine.dispose()
