"""The scheduler (APScheduler 3): the loop DESIGN describes, run by one active instance.

- intake: the drop folders (TT_DROP_DIRS), then evaluate if anything changed: every
  TT_POLL_SECONDS (default 15)
- pull: the HTTP and SQL sources (TT_SOURCES_FILE), then evaluate if anything changed: every
  TT_PULL_SECONDS (default 300)
- evaluate even with nothing new (windows slide, cooldowns end): at start, every 15 minutes
- dispatch the outbox when anything is due: every 5 seconds, and at once after an alert
- escalations and follow-ups: every 5 minutes
- retention purge: nightly at 02:30 Europe/London
- signed audit checkpoint (only with TT_AUDIT_KEY): nightly at 03:15 Europe/London
- heartbeat (`service_runs`, for /readyz): every 15 seconds

Every job runs at most one at a time (`max_instances=1`), runs once for several missed times
(`coalesce`), and is run late within its grace time. `run_scheduler` elects the instance
(trauma_tracker.election), runs the jobs while it holds the lock, and on a stop (SIGTERM)
lets the job in progress finish before returning.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engine.oversight import service_runs
from engine.sqltime import LONDON
from models.db import make_engine, require_current
from trauma_tracker import metrics
from trauma_tracker.election import AlreadyRunning, scheduler_lock
from trauma_tracker.jobs import Jobs
from trauma_tracker.settings import Settings

log = logging.getLogger("trauma_tracker.scheduler")

EVALUATE_SECONDS = 15 * 60
DISPATCH_SECONDS = 5
ESCALATION_SECONDS = 5 * 60
HEARTBEAT_SECONDS = 15
STANDBY_RETRY_SECONDS = 5.0  # how often a standby tries for the lock
LOCK_CHECK_SECONDS = 5.0  # how often the active one checks it still holds it


def build_scheduler(jobs: Jobs, settings: Settings) -> BackgroundScheduler:
    """The jobs on a BackgroundScheduler (not started)."""
    scheduler = BackgroundScheduler(
        timezone=LONDON,
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 60},
    )
    now = datetime.now(LONDON)

    def every(name, job, seconds, *, first=now, record=True, kind="job"):
        scheduler.add_job(
            jobs.guarded(name, job, kind=kind, record=record),
            IntervalTrigger(seconds=seconds, timezone=LONDON),
            id=name,
            name=name,
            next_run_time=first,
        )

    every("scheduler", jobs.heartbeat, HEARTBEAT_SECONDS, kind="scheduler")
    if settings.drop_dirs:
        every("intake", jobs.intake, settings.poll_seconds)
    if settings.sources:
        every("pull", jobs.pull, settings.pull_seconds)
    # At start too: changes an instance that died left unevaluated are evaluated now.
    every("evaluate", jobs.evaluate, EVALUATE_SECONDS, record=False)
    every("dispatch", jobs.dispatch, DISPATCH_SECONDS)
    every("escalations", jobs.escalations, ESCALATION_SECONDS)
    nightly = {"misfire_grace_time": 3 * 3600}
    scheduler.add_job(
        jobs.guarded("retention", jobs.retention),
        CronTrigger(hour=2, minute=30, timezone=LONDON),
        id="retention",
        name="retention",
        **nightly,
    )
    if settings.audit_key is not None:
        scheduler.add_job(
            jobs.guarded("checkpoint", jobs.checkpoint),
            CronTrigger(hour=3, minute=15, timezone=LONDON),
            id="checkpoint",
            name="checkpoint",
            **nightly,
        )
    else:
        log.warning("audit checkpoints skipped: TT_AUDIT_KEY is not set")

    def wake() -> None:
        try:
            scheduler.modify_job("dispatch", next_run_time=datetime.now(LONDON))
        except Exception:  # the scheduler is shutting down: the next start dispatches
            log.info("dispatch not woken: the scheduler is stopping")

    def wake_dispatch() -> None:
        """Bring the dispatch job forward, from a job's own thread. APScheduler's shutdown
        holds its job-store lock while it waits for running jobs, so a job that changed a job
        itself would wait for the shutdown that waits for it: the change is made from a
        thread of its own, which the job does not wait for."""
        if jobs.stopping.is_set():
            log.info("dispatch not woken: the scheduler is stopping")
            return
        threading.Thread(target=wake, name="wake-dispatch", daemon=True).start()

    jobs.wake_dispatch = wake_dispatch
    return scheduler


def run_scheduler(
    settings: Settings,
    stop: threading.Event,
    *,
    engine: sa.Engine | None = None,
    on_active=None,
) -> int:
    """Elect, then run the jobs until `stop` is set; returns the exit code.

    On PostgreSQL an instance that is not elected waits as a standby, trying again every few
    seconds. On SQLite a second instance returns 1 at once with the reason logged.
    """
    engine = engine or make_engine(settings.database_url)
    require_current(engine)
    lock = scheduler_lock(settings.database_url)
    waiting_logged = False
    try:
        while not stop.is_set():
            try:
                active = lock.acquire()
            except AlreadyRunning as error:
                log.error(str(error))
                return 1
            except sa.exc.DBAPIError as error:
                log.warning(
                    "scheduler lock: database unreachable, trying again",
                    extra={"error": type(error).__name__},
                )
                active = False
            if not active:
                if not waiting_logged:
                    log.info("standby: another instance holds the scheduler lock")
                    waiting_logged = True
                stop.wait(STANDBY_RETRY_SECONDS)
                continue
            waiting_logged = False
            _run_active(settings, engine, lock, stop, on_active)
        return 0
    finally:
        lock.release()


def _run_active(settings, engine, lock, stop: threading.Event, on_active) -> None:
    jobs = Jobs(settings, engine)
    log.info("scheduler active: this instance holds the scheduler lock")
    metrics.SCHEDULER_LOCK.set(1)
    service_runs.record_start(engine, "scheduler", "scheduler", jobs.clock(), jobs.instance)
    scheduler = build_scheduler(jobs, settings)
    scheduler.start()
    if on_active is not None:
        on_active()
    try:
        while not stop.wait(LOCK_CHECK_SECONDS):
            if not lock.held():
                log.error("scheduler lock lost: stopping the jobs, then standing by")
                break
    finally:
        jobs.stopping.set()
        log.info("scheduler stopping: waiting for the jobs in progress")
        scheduler.shutdown(wait=True)
        metrics.SCHEDULER_LOCK.set(0)
        log.info("scheduler stopped")
