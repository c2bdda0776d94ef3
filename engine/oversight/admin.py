"""The administrators' health figures: ingest runs, quarantined and held rows, pulled sources,
and the outbox with channel health (read through notifications.outbox).

Nothing here shows a row's contents: a quarantined row is its file, line, field and reason,
and a held row its feed, file, line and the staff id it waits for. The raw rows stay in the
database for whoever fixes the feed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.sqltime import read_datetime
from models import HeldRow, IngestRun, QuarantinedRow, ServiceRun, SourceWatermark, table_of
from notifications import outbox

runs_t = table_of(IngestRun)
quarantined_t = table_of(QuarantinedRow)
held_t = table_of(HeldRow)
watermarks_t = table_of(SourceWatermark)
service_t = table_of(ServiceRun)

RUN_OUTCOMES = ("ok", "duplicate", "failed")
MAX_LIMIT = 1000


class AdminError(ValueError):
    """A listing the admin pages can't give, naming the field."""


def _iso(moment: Any) -> str | None:
    value = read_datetime(moment)
    return value.isoformat().replace("+00:00", "Z") if value else None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise AdminError(f"limit: between 1 and {MAX_LIMIT}")


def ingest_runs(
    engine: sa.Engine, *, outcome: str | None = None, feed: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest ingest runs (one per file, page or chunk): outcome, counts and duration."""
    _check_limit(limit)
    if outcome is not None and outcome not in RUN_OUTCOMES:
        raise AdminError(f"outcome: must be one of {', '.join(RUN_OUTCOMES)}")
    query = sa.select(runs_t).order_by(runs_t.c.id.desc()).limit(limit)
    if outcome:
        query = query.where(runs_t.c.outcome == outcome)
    if feed:
        query = query.where(runs_t.c.feed == feed)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = []
    for row in rows:
        started, finished = read_datetime(row.started_at), read_datetime(row.finished_at)
        duration = (finished - started).total_seconds() * 1000 if finished else None
        found.append(
            {
                "run_id": row.id,
                "source": row.source,
                "feed": row.feed,
                "outcome": row.outcome,
                "started_at": _iso(started),
                "finished_at": _iso(finished),
                "duration_ms": round(duration, 1) if duration is not None else None,
                "rows": row.rows,
                "accepted": row.accepted,
                "unchanged": row.unchanged,
                "duplicates": row.duplicates,
                "rejected": row.rejected,
                "held": row.held,
                "linked": row.linked,
                "message": row.message,
            }
        )
    return found


def quarantined_rows(
    engine: sa.Engine, *, run_id: int | None = None, limit: int = 200
) -> dict[str, Any]:
    """Quarantined rows, newest first: file, line, field and reason (not the row itself)."""
    _check_limit(limit)
    base = sa.select(
        quarantined_t.c.id,
        quarantined_t.c.run_id,
        quarantined_t.c.source,
        quarantined_t.c.line,
        quarantined_t.c.field,
        quarantined_t.c.reason,
    )
    if run_id is not None:
        base = base.where(quarantined_t.c.run_id == run_id)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar()
        rows = conn.execute(
            base.order_by(quarantined_t.c.run_id.desc(), quarantined_t.c.line).limit(limit)
        ).all()
    return {
        "total": int(total),
        "rows": [
            {
                "run_id": r.run_id,
                "source": r.source,
                "line": r.line,
                "field": r.field,
                "reason": r.reason,
            }
            for r in rows
        ],
    }


def held_rows(engine: sa.Engine, *, limit: int = 200) -> dict[str, Any]:
    """Rows waiting for a person the people feed doesn't have yet, oldest first, and how
    many wait for each staff id."""
    _check_limit(limit)
    waiting = held_t.c.linked_at.is_(None)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(waiting)).scalar()
        rows = conn.execute(
            sa.select(
                held_t.c.run_id,
                held_t.c.feed,
                held_t.c.source,
                held_t.c.line,
                held_t.c.staff_id,
                held_t.c.held_at,
            )
            .where(waiting)
            .order_by(held_t.c.held_at, held_t.c.id)
            .limit(limit)
        ).all()
        by_person = conn.execute(
            sa.select(held_t.c.staff_id, sa.func.count())
            .where(waiting)
            .group_by(held_t.c.staff_id)
            .order_by(sa.func.count().desc(), held_t.c.staff_id)
            .limit(limit)
        ).all()
    return {
        "total": int(total),
        "rows": [
            {
                "run_id": r.run_id,
                "feed": r.feed,
                "source": r.source,
                "line": r.line,
                "staff_id": r.staff_id,
                "held_at": _iso(r.held_at),
            }
            for r in rows
        ],
        "by_staff_id": [{"staff_id": s, "rows": int(n)} for s, n in by_person],
    }


def pulled_sources(engine: sa.Engine) -> list[dict[str, Any]]:
    """Each pulled source (HTTP, SQL): its watermark, and when it last succeeded and failed
    (the scheduler's record `source:NAME`, where it has run as a service)."""
    with engine.connect() as conn:
        marks = {r.source_key: r for r in conn.execute(sa.select(watermarks_t))}
        runs = {
            r.name.removeprefix("source:"): r
            for r in conn.execute(sa.select(service_t).where(service_t.c.kind == "source"))
        }
    found = []
    for name in sorted(set(marks) | set(runs)):
        mark, run = marks.get(name), runs.get(name)
        # A watermark is saved only with a batch that was stored: a success at that time.
        successes = [read_datetime(mark.updated_at)] if mark else []
        if run is not None and run.last_success_at is not None:
            successes.append(read_datetime(run.last_success_at))
        found.append(
            {
                "source": name,
                "watermark": mark.watermark if mark else None,
                "watermark_updated_at": _iso(mark.updated_at) if mark else None,
                "last_success_at": _iso(max(successes)) if successes else None,
                "last_failure_at": _iso(run.last_failure_at) if run else None,
                "failures_since_success": run.failures if run else 0,
                "last_error": run.last_error if run else None,
            }
        )
    return found


def delivery(engine: sa.Engine, *, status: str = "failed") -> dict[str, Any]:
    """The outbox by channel and status, channel health, and the messages of one status
    (the delivery engineer's `outbox` listing)."""
    if status != "all" and status not in outbox.STATUSES:
        raise AdminError(f"status: must be one of {', '.join(outbox.STATUSES)} or all")
    with engine.connect() as conn:
        return {
            "counts": outbox.counts(conn),
            "health": outbox.health(conn),
            "messages": outbox.list_messages(conn, status),
        }


def retry_message(engine: sa.Engine, message_id: int, now: datetime) -> None:
    """Put a failed notification back to pending. :raise outbox.OutboxError: see retry."""
    with engine.begin() as conn:
        outbox.retry(conn, message_id, now)
