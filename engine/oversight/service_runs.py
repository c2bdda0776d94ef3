"""What the scheduler's jobs and sources last did (table `service_runs`), and whether that is
healthy enough for /readyz.

The scheduler writes a row per job (`intake`, `pull`, `evaluate`, `dispatch`, ...), per source
(`source:NAME`: a drop folder or a pulled source) and one for itself (`scheduler`, beating
while it holds the scheduler lock). Each write is its own short transaction, so a job that
rolls back still leaves its failure recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.sqltime import read_datetime
from models import OutboxMessage, ServiceRun, table_of

runs_t = table_of(ServiceRun)
outbox_t = table_of(OutboxMessage)

# The jobs whose staleness makes the service not ready: nothing comes in, or nothing goes out.
WATCHED = ("intake", "dispatch")
DEFAULT_STALE_AFTER = timedelta(minutes=10)
ERROR_CHARS = 500


def _upsert(conn: sa.Connection, name: str, kind: str, values: dict[str, Any]) -> None:
    updated = conn.execute(runs_t.update().where(runs_t.c.name == name).values(**values))
    if not updated.rowcount:
        conn.execute(runs_t.insert().values(name=name, kind=kind, **values))


def record_start(engine: sa.Engine, name: str, kind: str, at: datetime, instance: str) -> None:
    with engine.begin() as conn:
        _upsert(conn, name, kind, {"last_started_at": at, "instance": instance})


def record_success(engine: sa.Engine, name: str, kind: str, at: datetime, instance: str) -> None:
    with engine.begin() as conn:
        _upsert(conn, name, kind, {"last_success_at": at, "failures": 0, "instance": instance})


def record_failure(
    engine: sa.Engine, name: str, kind: str, at: datetime, instance: str, error: str
) -> None:
    with engine.begin() as conn:
        updated = conn.execute(
            runs_t.update()
            .where(runs_t.c.name == name)
            .values(
                last_failure_at=at,
                last_error=error[:ERROR_CHARS],
                failures=runs_t.c.failures + 1,
                instance=instance,
            )
        )
        if not updated.rowcount:
            conn.execute(
                runs_t.insert().values(
                    name=name,
                    kind=kind,
                    last_failure_at=at,
                    last_error=error[:ERROR_CHARS],
                    failures=1,
                    instance=instance,
                )
            )


def runs(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every recorded job, source and the scheduler, by name, times as aware UTC."""
    rows = conn.execute(sa.select(runs_t).order_by(runs_t.c.name)).all()
    result = []
    for row in rows:
        item = dict(row._mapping)
        for column in ("last_started_at", "last_success_at", "last_failure_at"):
            item[column] = read_datetime(item[column])
        result.append(item)
    return result


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def scheduler_health(
    conn: sa.Connection, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> dict[str, Any]:
    """Whether the scheduler is doing its work, for /readyz: `{"ok", "problems", "jobs"}`.

    Not ok when the active scheduler's heartbeat, or the last success of its intake or its
    dispatch, is older than `stale_after` (a job that has never succeeded counts from when
    the scheduler became active). A database no scheduler has ever run against is ok, with
    `"scheduler": "never run"`: the web app may be served on its own.
    """
    recorded = {item["name"]: item for item in runs(conn)}
    scheduler = recorded.get("scheduler")
    jobs = {
        name: {
            "last_success_at": _iso(item["last_success_at"]),
            "last_failure_at": _iso(item["last_failure_at"]),
            "failures": item["failures"],
        }
        for name, item in recorded.items()
        if item["kind"] == "job"
    }
    if scheduler is None:
        return {"ok": True, "scheduler": "never run", "problems": [], "jobs": jobs}
    problems = []
    since = scheduler["last_started_at"] or scheduler["last_success_at"]
    beat = scheduler["last_success_at"]
    if beat is None or now - beat > stale_after:
        problems.append(f"no active scheduler since {_iso(beat) or 'it started'}")
    for name in WATCHED:
        item = recorded.get(name)
        if item is None:
            continue  # not scheduled here (no drop folders), or not yet run
        last = item["last_success_at"] or since
        if last is None or now - last > stale_after:
            failures = f" ({item['failures']} failures in a row)" if item["failures"] else ""
            problems.append(f"{name} has not succeeded since {_iso(last) or 'ever'}{failures}")
    return {
        "ok": not problems,
        "scheduler": f"active on {scheduler['instance']}" if not problems else "stale",
        "problems": problems,
        "jobs": jobs,
    }


def oldest_pending_age(conn: sa.Connection, now: datetime) -> float:
    """Seconds since the oldest notification still waiting to go became due (0 if none)."""
    oldest = conn.execute(
        sa.select(sa.func.min(outbox_t.c.due_at)).where(
            outbox_t.c.status.in_(("pending", "claimed")), outbox_t.c.due_at <= now
        )
    ).scalar()
    oldest = read_datetime(oldest)
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
