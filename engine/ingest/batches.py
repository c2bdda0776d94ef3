"""Ingest: validate every row of a batch and store the batch in one transaction.

For each batch (a file, an HTTP page, a SQL chunk):
- the same content as an earlier stored batch of the feed is a no-op;
- a batch that can't be read as its feed at all fails whole (`FeedFormatError`) and stores
  nothing but a failed run record;
- each bad row is quarantined with its line, field and reason, and the rest goes in;
- rows naming a person not yet known are held, and stored when the person arrives;
- records are upserted by natural key: new or changed ones count as accepted, equal ones as
  unchanged, and a row repeated later in the same batch as a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.ingest.feeds import FEEDS, Feed, Reject, compile_validator, feed_for_filename
from engine.ingest.rows import Prepare, batch_rows
from engine.ingest.upsert import Upserter, summarize_brin
from integrations.base import Batch, FeedFormatError
from models import FEED_TABLES, HeldRow, IngestRun, QuarantinedRow, SourceWatermark, table_of

if TYPE_CHECKING:
    from engine.ingest.csv_columns import Staged

CHUNK_ROWS = 20_000

# People first so that rows naming them are not held needlessly; then incidents before the
# deployments and occurrences that refer to them.
FEED_ORDER = (
    "units",
    "people",
    "cc_incidents",
    "cc_deployments",
    "rms_occurrences",
    "rms_involvements",
    "rest_day_cancellations",
    "absences",
)


def feed_rank(feed: str | None) -> int:
    return FEED_ORDER.index(feed) if feed in FEED_ORDER else len(FEED_ORDER)


@dataclass
class BatchReport:
    """What became of one batch; `to_json` is the CONTRACT's `ingest --json` entry."""

    path: str
    feed: str | None
    outcome: str = "ok"  # ok | duplicate | failed
    rows: int = 0
    accepted: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    held: int = 0
    linked: int = 0
    rejects: list[Reject] = field(default_factory=list)
    message: str | None = None
    # Something wrong after the batch was handled (a file that could not be moved, or
    # changed while it was read): the rows are stored, and the command exits 1.
    warning: str | None = None
    run_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "feed": self.feed,
            "outcome": self.outcome,
            "rows": self.rows,
            "accepted": self.accepted,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "held": self.held,
            "linked": self.linked,
            "rejects": [
                {"line": r.line, "field": r.field, "reason": r.reason} for r in self.rejects
            ],
            "message": self.message,
            "warning": self.warning,
        }


Progress = Callable[[str, int], None]
"""Called as rows go in: (batch name, rows read so far in this batch)."""


def _now() -> datetime:
    return datetime.now(UTC)


def resolve_feed(batch: Batch, override: str | None) -> Feed:
    """The batch's feed: `--feed`, else what the source says, else the file name's prefix."""
    name = override or batch.feed or feed_for_filename(batch.name)
    if name is None:
        raise FeedFormatError(
            batch.name,
            "the file name does not name a feed (expected a prefix such as cc_incidents_); "
            f"use --feed with one of: {', '.join(FEEDS)}",
        )
    if name not in FEEDS:
        raise FeedFormatError(batch.name, f"unknown feed {name!r} (one of: {', '.join(FEEDS)})")
    return FEEDS[name]


def check_columns(batch: Batch, feed: Feed) -> None:
    problem = feed.header_problem(batch.columns)
    if problem:
        raise FeedFormatError(batch.name, problem)


class Ingestor:
    """Stores batches into one database. It keeps nothing between batches, and each batch
    takes its own connection, so threads may share one (see engine.ingest.files.ingest_files)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = _now,
        fast_csv: bool = True,
    ):
        self.engine = engine
        self.progress = progress
        self.clock = clock
        # CSV files go through the polars lane unless told not to (tests compare the lanes).
        self.fast_csv = fast_csv

    def ingest(
        self, batch: Batch, *, feed: str | None = None, prepared: Staged | None = None
    ) -> BatchReport:
        """Store one batch whole or not at all, then let its source finish (`batch.done`).

        `prepared` is what another process made of the batch's file ahead of its turn
        (`engine.ingest.prepare_ahead`); `engine.ingest.rows.batch_rows` uses it if it still fits.

        :raise FeedFormatError: the batch can't be read as its feed; a failed run is recorded.
        """
        report = BatchReport(path=batch.name, feed=feed or batch.feed)
        started = self.clock()
        try:
            spec = resolve_feed(batch, feed)
            report.feed = spec.name
            check_columns(batch, spec)
            if batch.content_hash and self._already_stored(spec.name, batch.content_hash):
                report.outcome = "duplicate"
                report.message = "same content as a file already ingested; nothing to do"
            else:
                with (
                    self.engine.connect() as conn,
                    batch_rows(conn, batch, prepared, fast=self.fast_csv) as chunks_of,
                    conn.begin(),
                ):
                    self._store(conn, batch, spec, report, started, chunks_of)
        except FeedFormatError as error:
            self._record_failure(batch, report, started, error.message)
            batch.done(False, error.message)
            raise
        except Exception as error:
            self._record_failure(batch, report, started, f"{type(error).__name__}: {error}")
            batch.done(False, str(error))
            raise
        batch.done(True, None)
        return report

    # -- one transaction -------------------------------------------------------------------

    def _store(
        self,
        conn: sa.Connection,
        batch: Batch,
        spec: Feed,
        report: BatchReport,
        started,
        chunks_of: Prepare,
    ) -> None:
        runs = table_of(IngestRun)
        report.run_id = conn.execute(
            runs.insert()
            .values(
                source=batch.name,
                feed=spec.name,
                content_hash=batch.content_hash,
                started_at=started,
                outcome="ok",
            )
            .returning(runs.c.id)
        ).scalar_one()
        run_id = report.run_id
        upserter = Upserter(conn, table_of(FEED_TABLES[spec.name]), spec.columns, spec.key, run_id)
        known = self.known_people(conn) if spec.person_field else None
        sent = 0
        for chunk in chunks_of(spec, known, run_id, CHUNK_ROWS):
            report.rows += chunk.read
            report.duplicates += chunk.duplicates
            report.rejected += len(chunk.rejects)
            report.held += len(chunk.held)
            report.rejects.extend(reject for reject, _ in chunk.rejects)
            sent += chunk.payload.count
            report.accepted += upserter.store(chunk.payload)
            if chunk.rejects:
                conn.execute(
                    table_of(QuarantinedRow).insert(),
                    [
                        {
                            "run_id": run_id,
                            "source": batch.name,
                            "line": reject.line,
                            "field": reject.field,
                            "reason": reject.reason,
                            "raw": raw,
                        }
                        for reject, raw in chunk.rejects
                    ],
                )
            if chunk.held:
                self._hold(conn, spec.name, batch.name, run_id, started, chunk.held)
            if self.progress:
                self.progress(batch.name, report.rows)
        summarize_brin(conn, upserter.table)
        report.unchanged = sent - report.accepted
        if spec.name == "people":
            report.linked = self._link_held(conn, run_id)
        if batch.watermark is not None and batch.source_key:
            self._save_watermark(conn, batch.source_key, batch.watermark)
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(
                finished_at=self.clock(),
                rows=report.rows,
                accepted=report.accepted,
                unchanged=report.unchanged,
                duplicates=report.duplicates,
                rejected=report.rejected,
                held=report.held,
                linked=report.linked,
            )
        )
        if self.progress:
            self.progress(batch.name, report.rows)

    @staticmethod
    def known_people(conn: sa.Connection) -> frozenset[str]:
        # Straight from the driver: thousands of rows, each a plain string.
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute("SELECT DISTINCT staff_id FROM people")
            return frozenset(staff_id for (staff_id,) in cursor.fetchall())
        finally:
            cursor.close()

    @staticmethod
    def _hold(conn: sa.Connection, feed: str, source: str, run_id: int, at, rows) -> None:
        held = table_of(HeldRow)
        # A row held again (the same key re-sent) replaces its earlier copy. In slices, as
        # SQLite binds at most 32,766 values in one statement.
        keys = [row[1] for row in rows]
        for start in range(0, len(keys), 1000):
            conn.execute(
                held.delete().where(
                    held.c.feed == feed, held.c.row_key.in_(keys[start : start + 1000])
                )
            )
        conn.execute(
            held.insert(),
            [
                {
                    "run_id": run_id,
                    "feed": feed,
                    "row_key": row_key,
                    "source": source,
                    "line": line,
                    "staff_id": staff_id,
                    "raw": raw,
                    "held_at": at,
                }
                for line, row_key, staff_id, raw in rows
            ],
        )

    def _link_held(self, conn: sa.Connection, run_id: int) -> int:
        """Store held rows whose person is now known; returns how many were linked."""
        held = table_of(HeldRow)
        people = table_of(FEED_TABLES["people"])
        waiting = conn.execute(
            sa.select(held.c.id, held.c.feed, held.c.raw)
            .where(held.c.linked_at.is_(None))
            .where(held.c.staff_id.in_(sa.select(people.c.staff_id)))
            .order_by(held.c.id)
        ).all()
        linked = 0
        for feed_name in FEED_ORDER:
            group = [row for row in waiting if row.feed == feed_name]
            if not group:
                continue
            spec = FEEDS[feed_name]
            validate = compile_validator(spec, spec.columns)
            rows: dict[tuple, tuple] = {}
            for row in group:
                raw = json.loads(row.raw)
                values = validate(0, [raw.get(c) for c in spec.columns])
                if isinstance(values, tuple):
                    rows[spec.key_of(values)] = values
            table = table_of(FEED_TABLES[feed_name])
            Upserter(conn, table, spec.columns, spec.key, run_id).upsert(list(rows.values()))
            summarize_brin(conn, table)
            conn.execute(
                held.update()
                .where(held.c.id.in_([row.id for row in group]))
                .values(linked_at=self.clock(), linked_run_id=run_id)
            )
            linked += len(group)
        return linked

    def _save_watermark(self, conn: sa.Connection, key: str, watermark: str) -> None:
        marks = table_of(SourceWatermark)
        updated = conn.execute(
            marks.update()
            .where(marks.c.source_key == key)
            .values(watermark=watermark, updated_at=self.clock())
        ).rowcount
        if not updated:
            conn.execute(
                marks.insert().values(source_key=key, watermark=watermark, updated_at=self.clock())
            )

    # -- bookkeeping outside the batch's transaction ---------------------------------------

    def _already_stored(self, feed: str, digest: str) -> bool:
        runs = table_of(IngestRun)
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(runs.c.id)
                    .where(runs.c.feed == feed, runs.c.content_hash == digest)
                    .where(runs.c.outcome == "ok")
                    .limit(1)
                ).first()
                is not None
            )

    def _record_failure(self, batch: Batch, report: BatchReport, started, message: str) -> None:
        report.outcome = "failed"
        report.message = message
        report.accepted = report.unchanged = report.duplicates = 0
        report.rejected = report.held = report.linked = 0
        report.rejects = []
        self.record_unreadable(batch.name, report.feed, message, started, batch.content_hash)

    def record_unreadable(
        self,
        source: str,
        feed: str | None,
        message: str,
        started: datetime | None = None,
        digest: str | None = None,
    ) -> None:
        """Record a run that stored nothing, so operators see the failure beside the rest."""
        with self.engine.begin() as conn:
            conn.execute(
                table_of(IngestRun)
                .insert()
                .values(
                    source=source,
                    feed=feed,
                    content_hash=digest,
                    started_at=started or self.clock(),
                    finished_at=self.clock(),
                    outcome="failed",
                    message=message,
                )
            )


def watermark_for(engine: sa.Engine, source_key: str) -> str | None:
    """The stored watermark of a pulled source, or None before its first pull."""
    marks = table_of(SourceWatermark)
    with engine.connect() as conn:
        return conn.execute(
            sa.select(marks.c.watermark).where(marks.c.source_key == source_key)
        ).scalar_one_or_none()
