"""The scheduler runs its jobs on their own, one instance per database."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from engine.oversight import service_runs
from models import Alert
from tests.service.drops import write_exposure, write_team
from trauma_tracker.election import AlreadyRunning, SqliteLock
from trauma_tracker.jobs import Jobs
from trauma_tracker.scheduler import build_scheduler, run_scheduler


def wait_for(check, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_jobs_run_with_one_instance_coalesced_and_a_grace_time(settings, service_db):
    _, engine = service_db
    scheduler = build_scheduler(Jobs(settings, engine), settings)
    scheduler.start(paused=True)  # the job defaults apply once it starts
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown()
    assert {"scheduler", "intake", "evaluate", "dispatch", "escalations", "retention"} <= set(jobs)
    assert "checkpoint" not in jobs  # no TT_AUDIT_KEY
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True and job.misfire_grace_time >= 60
    assert str(jobs["retention"].trigger.timezone) == "Europe/London"


def test_the_scheduler_takes_in_dropped_files_until_stopped(settings, service_db, drop_dir):
    _, engine = service_db
    stop = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("code", run_scheduler(settings, stop, engine=engine))
    )
    thread.start()
    try:
        write_team(drop_dir)
        write_exposure(drop_dir, "INC-1")

        def alert_opened():
            with engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(Alert)).scalar() > 0

        assert wait_for(alert_opened)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert result == {"code": 0}
    assert sorted(p.name for p in drop_dir.iterdir()) == ["processed"]
    with engine.connect() as conn:
        names = {row["name"] for row in service_runs.runs(conn)}
        health = service_runs.scheduler_health(conn, datetime.now(UTC))
    assert {"scheduler", "intake", "evaluate", f"source:{drop_dir}"} <= names
    assert health["ok"] is True


def test_on_sqlite_a_second_scheduler_is_refused(settings, service_db, tmp_path):
    url, engine = service_db
    if not url.startswith("sqlite"):
        pytest.skip("PostgreSQL instances stand by instead (test_election)")
    held = SqliteLock(engine.url.database)
    held.acquire()
    try:
        with pytest.raises(AlreadyRunning, match="another scheduler is already running"):
            SqliteLock(engine.url.database).acquire()
        assert run_scheduler(settings, threading.Event(), engine=engine) == 1
    finally:
        held.release()
    other = SqliteLock(engine.url.database)
    assert other.acquire() is True  # released: the next one may start
    other.release()


def test_a_job_waking_dispatch_while_the_scheduler_shuts_down_does_not_hang_it(
    settings, service_db
):
    """APScheduler's shutdown holds its job-store lock while it waits for running jobs; a job
    that woke the dispatcher then (an evaluation that opened alerts as the service stopped)
    used to wait for that lock for ever, and the shutdown for it."""
    _, engine = service_db
    jobs = Jobs(settings, engine)
    scheduler = build_scheduler(jobs, settings)
    go, woken = threading.Event(), threading.Event()

    def evaluation_opening_alerts():
        go.wait(30)
        jobs.wake_dispatch()
        woken.set()

    scheduler.add_job(evaluation_opening_alerts, id="waker", next_run_time=datetime.now(UTC))
    scheduler.start()
    shutting = threading.Thread(target=lambda: scheduler.shutdown(wait=True))
    time.sleep(0.5)  # the waker is running
    shutting.start()
    time.sleep(0.5)  # the shutdown now holds its lock, waiting for the waker
    go.set()
    shutting.join(timeout=20)
    assert not shutting.is_alive(), "the scheduler's shutdown hung on a job waking dispatch"
    assert woken.is_set()
