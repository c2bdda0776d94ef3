"""`run` stops cleanly on SIGTERM: the job in progress finishes, nothing is left claimed."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from models import Incident, OutboxMessage
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
    incidents = Incident.__table__
    outbox = OutboxMessage.__table__
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
