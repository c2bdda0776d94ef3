"""The scheduler's jobs: intake, pull, evaluate, dispatch, escalations and follow-ups,
retention, the audit checkpoint, the heartbeat.

Each job is a method of `Jobs`, run through `Jobs.guarded`: a job that raises is logged with
its traceback and recorded as failed (table `service_runs`), and the scheduler runs it again
at its next time. Every job is safe to run again after a crash: a file is moved out of the
drop folder only after its transaction commits (a file ingested again is a duplicate, and
nothing changes), an evaluation is one transaction, and the dispatcher claims each message
before sending it.

Logs carry ids and counts only (trauma_tracker.logging_setup).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.ingest.batches import BatchReport, Ingestor
from engine.oversight import service_runs
from engine.rules.marks import Marks
from integrations.files import folder_entries
from models import Alert, OutboxMessage, table_of
from trauma_tracker import metrics
from trauma_tracker.settings import Settings

log = logging.getLogger("trauma_tracker.jobs")

# A file still being written is left for the next poll: it must not have changed for this
# long. (Writers should still write under another name and rename it in.)
SETTLE_SECONDS = 1.0  # unchanged this long, a dropped file is complete
# A job that runs every few seconds and finds nothing to do records its success at most
# this often, so that SQLite's one writer is not kept busy by bookkeeping.
QUIET_RECORD_SECONDS = 30.0


def instance_name() -> str:
    """This process, as host:pid: in logs and in `service_runs.instance`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _private(error: BaseException) -> str:
    """An exception as type and message, without SQL parameters (they may hold anything)."""
    if isinstance(error, sa.exc.StatementError):
        error.hide_parameters = True
    return f"{type(error).__name__}: {error}"


@dataclass
class IntakeResult:
    files: int = 0
    changed: bool = False
    failed: list[str] = field(default_factory=list)


class Jobs:
    """The jobs of one active scheduler, sharing its engine, ingestor and rule marks."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = _now,
        instance: str | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.instance = instance or instance_name()
        self.ingestor = Ingestor(engine)
        self.marks = Marks()  # kept warm across evaluations (engine.rules.marks)
        self.changed = threading.Event()  # an intake stored something not yet evaluated
        self._evaluating = threading.Lock()
        # name -> (monotonic time, succeeded) of its last record
        self._recorded: dict[str, tuple[float, bool]] = {}
        self.wake_dispatch: Callable[[], None] = lambda: None  # set by the scheduler
        self.stopping = threading.Event()

    # -- running a job -----------------------------------------------------------------------

    def guarded(
        self, name: str, job: Callable[[], Any], kind: str = "job", record: bool = True
    ) -> Callable[[], None]:
        """`job` as the scheduler runs it: timed, recorded (unless it records itself), and
        never raising."""

        def run() -> None:
            started = time.monotonic()
            try:
                busy = job()
            except Exception as error:
                metrics.JOB_RUNS.labels(job=name, outcome="failed").inc()
                log.exception("job failed", extra={"job": name, "instance": self.instance})
                if record:
                    self._record(name, kind, error)
                return
            finally:
                metrics.JOB_SECONDS.labels(job=name).observe(time.monotonic() - started)
            metrics.JOB_RUNS.labels(job=name, outcome="ok").inc()
            if record:
                self._record(name, kind, None, quiet=busy is False)

        run.__name__ = name
        return run

    def _record(
        self, name: str, kind: str, error: BaseException | None, *, quiet: bool = False
    ) -> None:
        """Write a success or failure to `service_runs`. A `quiet` success (nothing was to
        do) right after another success is written at most every QUIET_RECORD_SECONDS."""
        last = self._recorded.get(name)
        if (
            error is None
            and quiet
            and last is not None
            and last[1]
            and time.monotonic() - last[0] < QUIET_RECORD_SECONDS
        ):
            return
        at = self.clock()
        try:
            if error is None:
                service_runs.record_success(self.engine, name, kind, at, self.instance)
            else:
                service_runs.record_failure(
                    self.engine, name, kind, at, self.instance, _private(error)
                )
            self._recorded[name] = (time.monotonic(), error is None)
        except Exception:  # the database is away: the log has it, the next run records
            log.exception("could not record a job run", extra={"job": name})

    # -- intake --------------------------------------------------------------------------------

    def intake(self) -> bool:
        """Ingest the files waiting in the drop folders (moved to processed/ or failed/), then
        evaluate if anything changed. Returns whether there was anything to do."""
        result = IntakeResult()
        errors = []
        for folder in self.settings.drop_dirs:
            files = result.files
            try:
                self._intake_folder(Path(folder), result)
            except Exception as error:  # the job logs the traceback; the others go on
                errors.append(error)
                self._record(f"source:{folder}", "source", error)
                log.warning(
                    "drop folder failed",
                    extra={"source": str(folder), "error": type(error).__name__},
                )
            else:
                quiet = result.files == files
                self._record(f"source:{folder}", "source", None, quiet=quiet)
        if result.changed:
            self.changed.set()
            self.evaluate_changes()
        if errors:
            raise errors[0]
        return result.files > 0

    def _intake_folder(self, folder: Path, result: IntakeResult) -> None:
        """The folder's waiting files as `ingest --move` takes them (engine.ingest.files): in
        dependency order, one transaction each, under the folder's lock, only once settled,
        links and other non-files moved aside unread; to processed/ once stored, to failed/
        with a reason when one can't be read as its feed. A file the database could not take
        because the database went away stays where it is, for the next poll."""
        from engine.ingest.files import ingest_files

        if not folder.is_dir():
            raise FileNotFoundError(f"drop folder {folder} does not exist or is not a folder")
        files, refused = folder_entries(folder)
        # Files written to a moment ago are for a later poll (ingest_files checks again).
        files = [path for path in files if _quiet(path)]
        if not files and not refused:
            return
        # A database that is away would fail every file: find out before touching any.
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        log.info("intake: files waiting", extra={"files": len(files) + len(refused)})
        reports = ingest_files(
            self.ingestor, [folder], move=True, jobs=1, settle_seconds=SETTLE_SECONDS
        )
        try:
            started = time.monotonic()
            for report in reports:
                if report.outcome in ("waiting", "skipped"):
                    # Still being written, or another `ingest --move` has the folder.
                    log.info("intake: left for later", extra={"outcome": report.outcome})
                else:
                    self._count(report, time.monotonic() - started)
                    result.files += 1
                    if report.outcome == "failed":
                        result.failed.append(report.path)
                    result.changed |= bool(report.accepted or report.linked)
                if self.stopping.is_set():
                    return  # a stop: the files not yet started wait for the next start
                started = time.monotonic()
        finally:
            reports.close()  # gives the folder's lock back

    def _count(self, report: BatchReport, seconds: float) -> None:
        feed = report.feed or "unknown"
        metrics.INGEST_SECONDS.labels(feed=feed).observe(seconds)
        metrics.ROWS_INGESTED.labels(feed=feed).inc(report.accepted)
        metrics.ROWS_REJECTED.labels(feed=feed).inc(report.rejected)
        # No file name: a force's export may name files after what is in them. The run id
        # finds the file in `ingest_runs`; a failed one is in failed/ with its reason.
        extra = {
            "feed": feed,
            "outcome": report.outcome,
            "accepted": report.accepted,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "held": report.held,
            "run_id": report.run_id,
            "seconds": round(seconds, 3),
        }
        if report.outcome == "failed":
            # The reason is in failed/<file>.reason.txt; it may quote the file's contents.
            log.warning("file failed: moved to failed/", extra=extra)
        else:
            log.info("file ingested", extra=extra)

    def pull(self) -> bool:
        """Pull every configured HTTP and SQL source; one failing does not stop the others."""
        from integrations.base import SourceError
        from trauma_tracker.pulling import pull_sources

        changed, errors = False, []
        for source in self.settings.sources:
            started = time.monotonic()
            try:
                for report in pull_sources(self.ingestor, [source]):
                    now = time.monotonic()
                    self._count(report, now - started)
                    started = now
                    changed |= bool(report.accepted or report.linked)
            except (SourceError, sa.exc.SQLAlchemyError, OSError, ValueError) as error:
                errors.append(error)
                self._record(f"source:{source.name}", "source", error)
                log.warning(
                    "source failed", extra={"source": source.name, "error": type(error).__name__}
                )
            else:
                self._record(f"source:{source.name}", "source", None)
        if changed:
            self.changed.set()
            self.evaluate_changes()
        if errors:
            raise errors[0]
        return True

    # -- evaluate ------------------------------------------------------------------------------

    def evaluate_changes(self) -> bool:
        """Evaluate if an intake changed something since the last evaluation."""
        return self._evaluate(force=False)

    def evaluate(self) -> bool:
        """Evaluate now (the slow interval: windows slide, cooldowns end, with no new data)."""
        return self._evaluate(force=True)

    def _evaluate(self, force: bool) -> bool:
        from engine.evaluation import run_evaluation
        from engine.scoring.criteria import load_criteria

        with self._evaluating:  # one at a time; a change that came meanwhile is seen next
            if not force and not self.changed.is_set():
                return False
            self.changed.clear()
            newest_alert = self._newest_alert()
            started = time.monotonic()
            try:
                criteria, text = load_criteria(self.settings.rules_dir)
                report = run_evaluation(
                    self.engine,
                    criteria,
                    text,
                    history_days=self.settings.history_days,
                    rules_dir=self.settings.rules_dir,
                    marks=self.marks,
                )
            except Exception as error:
                self.changed.set()  # still to do: the next intake or interval tries again
                self._record("evaluate", "job", error)
                raise
            seconds = time.monotonic() - started
            metrics.EVALUATION_SECONDS.observe(seconds)
            metrics.DECISIONS.inc(report.decisions)
            if report.alerts_opened:
                self._count_alerts(after=newest_alert)
            self._record("evaluate", "job", None)
        log.info(
            "evaluated",
            extra={
                "evaluation_id": report.evaluation_id,
                "mode": report.mode,
                "people": report.people,
                "snapshots_written": report.snapshots_written,
                "decisions": report.decisions,
                "alerts_opened": report.alerts_opened,
                "ruleset": report.ruleset,
                "ruleset_fallback": report.ruleset_fallback,
                "seconds": round(seconds, 3),
            },
        )
        if report.rule_problems:
            log.warning("rule files have problems", extra={"problems": report.rule_problems})
        if report.alerts_opened:
            self.wake_dispatch()
        return True

    def _newest_alert(self) -> int:
        alerts = table_of(Alert)
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(alerts.c.id))).scalar() or 0

    def _count_alerts(self, after: int) -> None:
        """Alerts opened by the evaluation (ids above the newest before it), by rule."""
        alerts = table_of(Alert)
        query = (
            sa.select(alerts.c.rule_id, alerts.c.severity, sa.func.count())
            .where(alerts.c.id > after)
            .group_by(alerts.c.rule_id, alerts.c.severity)
        )
        with self.engine.connect() as conn:
            for rule_id, severity, count in conn.execute(query):
                metrics.ALERTS_OPENED.labels(rule=rule_id, severity=severity).inc(count)

    # -- dispatch ------------------------------------------------------------------------------

    def anything_due(self) -> bool:
        outbox = table_of(OutboxMessage)
        query = (
            sa.select(outbox.c.id)
            .where(outbox.c.status.in_(("pending", "claimed")), outbox.c.due_at <= self.clock())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def dispatch(self) -> bool:
        """Send what is due in the outbox (trauma_tracker.delivery.dispatch_now), if anything."""
        if not self.anything_due():
            return False
        from trauma_tracker.delivery import dispatch_now

        started = self.clock()
        report = dispatch_now(self.settings, self.engine)
        self._count_notifications(started)
        counts = {"sent": report.sent, "failed": report.failed, "deferred": report.deferred}
        if report.sent or report.failed:
            log.info("dispatched", extra=counts)
        return bool(report.sent or report.failed)

    def _count_notifications(self, since: datetime) -> None:
        """Rows sent, and rows failed for good, by channel, since the run started."""
        outbox = table_of(OutboxMessage)
        by_channel = sa.select(outbox.c.channel, sa.func.count()).group_by(outbox.c.channel)
        with self.engine.connect() as conn:
            sent = conn.execute(
                by_channel.where(outbox.c.status == "sent", outbox.c.sent_at >= since)
            ).all()
            failed = conn.execute(
                by_channel.where(outbox.c.status == "failed", outbox.c.claimed_at >= since)
            ).all()
        for channel, count in sent:
            metrics.NOTIFICATIONS_SENT.labels(channel=channel).inc(count)
        for channel, count in failed:
            metrics.NOTIFICATIONS_FAILED.labels(channel=channel).inc(count)

    # -- alerts --------------------------------------------------------------------------------

    def escalations(self) -> bool:
        """Escalate overdue alerts and queue the follow-ups now due, under the active routing."""
        from engine.alerts import lifecycle as alerts
        from engine.rules.active import load_active

        now = self.clock()
        with self.engine.begin() as conn:
            routing = load_active(conn, self.settings.rules_dir, now).pack.routing
            escalated = alerts.escalate_overdue(conn, routing, now)
            follow_ups = alerts.send_follow_ups(conn, routing, now)
        if escalated or follow_ups:
            log.info(
                "escalations and follow-ups queued",
                extra={"escalated_alert_ids": escalated, "follow_up_ids": follow_ups},
            )
            self.wake_dispatch()
        return bool(escalated or follow_ups)

    # -- nightly -------------------------------------------------------------------------------

    def retention(self) -> bool:
        """Purge what is past its retention (engine.people.retention), logging the counts."""
        from engine.people.retention import purge

        report = purge(
            self.engine,
            self.clock(),
            history_days=self.settings.history_days,
            access_log_days=self.settings.access_log_days,
            decision_log_days=self.settings.decision_log_days,
        )
        log.info("retention purge", extra={"purged": report})
        return True

    def checkpoint(self) -> bool:
        """Sign the decision log's current end (TT_AUDIT_KEY)."""
        from engine.alerts.audit import write_checkpoint

        key = self.settings.audit_key_bytes
        if key is None:
            return False
        with self.engine.begin() as conn:
            document = write_checkpoint(conn, key, self.clock())
        log.info(
            "audit checkpoint signed",
            extra={"seq": document["checkpoint"]["seq"], "key_id": document["key_id"]},
        )
        return True

    def heartbeat(self) -> bool:
        """The active scheduler is alive (its `service_runs` row, read by /readyz)."""
        return True


def _quiet(path: Path) -> bool:
    """Not written to for SETTLE_SECONDS (a file gone meanwhile is not)."""
    try:
        modified = path.stat().st_mtime
    except OSError:
        return False
    return time.time() - modified >= SETTLE_SECONDS
