"""The outbox as the dispatcher sees it: claiming due rows, recording each attempt, retries.

A row goes pending -> claimed -> sent, or back to pending with a later `due_at` (a transient
failure, with exponential backoff and jitter, never sooner than the far end's Retry-After),
or to failed (a permanent failure, or too many attempts) with its last error. A claim is
atomic (one conditional UPDATE; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two dispatchers
never take the same row) and counts the attempt before anything is sent; it holds a lease,
and a row whose lease ran out (its dispatcher died) is pending again. `cancelled` is a row
that must not go any more (a follow-up for an alert resolved as not needed).

Channel health: a permanent failure marks the channel unhealthy until a send succeeds.

This module reads and writes tables only; it imports nothing but models.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from models import ChannelHealth, OutboxMessage, table_of

outbox_t = table_of(OutboxMessage)
health_t = table_of(ChannelHealth)

STATUSES = ("pending", "claimed", "sent", "failed", "cancelled")
# A dispatch run checks its lease before each send, so this only needs to outlast one batch.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=2)
ERROR_LENGTH = 500


class OutboxError(Exception):
    """An outbox row that does not exist, or a change its status does not allow."""


@dataclass(frozen=True)
class Claimed:
    """A row this dispatch run holds: send it, then record the result."""

    id: int
    alert_id: int | None
    kind: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    message_key: str | None
    created_at: datetime


def _ids(ids: Iterable[int]) -> list[int]:
    return sorted(set(ids))


def release_expired(conn: sa.Connection, now: datetime) -> int:
    """Claims whose lease ran out go back to pending (their dispatcher died or gave up)."""
    return conn.execute(
        outbox_t.update()
        .where(outbox_t.c.status == "claimed", outbox_t.c.lease_until <= now)
        .values(status="pending", claimed_by=None, lease_until=None)
    ).rowcount


def claim(
    conn: sa.Connection,
    now: datetime,
    *,
    channels: Iterable[str],
    token: str,
    limit: int,
    lease: timedelta = LEASE,
) -> list[Claimed]:
    """Claim up to `limit` due rows on `channels` for the run `token`, oldest first, counting
    the attempt. Atomic: a row another run claimed is skipped (PostgreSQL) or not matched by
    the conditional update (SQLite, whose writers take turns)."""
    wanted = sa.select(outbox_t.c.id).where(
        outbox_t.c.status == "pending",
        outbox_t.c.due_at <= now,
        outbox_t.c.channel.in_(sorted(channels)),
    )
    # A recipient's rows side by side, so that a digest is rarely split across batches.
    order = (outbox_t.c.due_at, outbox_t.c.channel, outbox_t.c.recipient, outbox_t.c.id)
    wanted = wanted.order_by(*order).limit(limit)
    if conn.dialect.name == "postgresql":
        # Locked until commit; rows another run has locked are passed over, not waited for.
        # Two statements: inside `IN (...)` the planner may run a LIMIT subquery again.
        ids = list(conn.execute(wanted.with_for_update(skip_locked=True)).scalars())
        if not ids:
            return []
        chosen: Any = ids
    else:
        # One statement: SQLite takes the write lock before it reads, so a second dispatcher
        # waits its turn instead of finding its snapshot stale.
        chosen = wanted.scalar_subquery()
    update = (
        outbox_t.update()
        .where(outbox_t.c.id.in_(chosen), outbox_t.c.status == "pending")
        .values(
            status="claimed",
            claimed_by=token,
            claimed_at=now,
            lease_until=now + lease,
            attempts=outbox_t.c.attempts + 1,
        )
        .returning(
            outbox_t.c.id,
            outbox_t.c.alert_id,
            outbox_t.c.kind,
            outbox_t.c.channel,
            outbox_t.c.recipient,
            outbox_t.c.payload,
            outbox_t.c.attempts,
            outbox_t.c.message_key,
            outbox_t.c.created_at,
        )
    )
    rows = conn.execute(update).all()
    claimed = [
        Claimed(
            id=row.id,
            alert_id=row.alert_id,
            kind=row.kind,
            channel=row.channel,
            recipient=row.recipient,
            payload=json.loads(row.payload),
            attempts=row.attempts,
            message_key=row.message_key,
            created_at=row.created_at,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


def any_due(conn: sa.Connection, now: datetime, channels: Iterable[str]) -> bool:
    """Whether any pending row on `channels` is due at `now`."""
    query = sa.select(outbox_t.c.id).where(
        outbox_t.c.status == "pending",
        outbox_t.c.due_at <= now,
        outbox_t.c.channel.in_(sorted(channels)),
    )
    return conn.execute(query.limit(1)).first() is not None


_KEY = (
    outbox_t.update()
    .where(outbox_t.c.id == sa.bindparam("row_id"))
    .values(message_key=sa.bindparam("key"))
)


def own_key(row_id: int, kind: str) -> str:
    """The key of a message that is one row alone (the database writes the same)."""
    return f"tt-{kind}-{row_id}"


def set_keys(conn: sa.Connection, keys: Iterable[tuple[Claimed, str]]) -> None:
    """Record the idempotency key of the message each row goes out in (before the send).
    Rows alone in their message, with their own key (most), take one statement."""
    keys = list(keys)
    alone = [row.id for row, key in keys if key == own_key(row.id, row.kind)]
    if alone:
        own = sa.literal("tt-") + outbox_t.c.kind + "-" + sa.cast(outbox_t.c.id, sa.String)
        conn.execute(
            outbox_t.update()
            .where(outbox_t.c.id.in_(alone), outbox_t.c.message_key.is_(None))
            .values(message_key=own)
        )
    rest = [{"row_id": row.id, "key": key} for row, key in keys if key != own_key(row.id, row.kind)]
    if rest:
        conn.execute(_KEY, rest)


def _held(ids: Sequence[int], token: str):
    return (
        outbox_t.c.id.in_(_ids(ids)),
        outbox_t.c.status == "claimed",
        outbox_t.c.claimed_by == token,
    )


def _error_text(error: str) -> str:
    return error if len(error) <= ERROR_LENGTH else error[: ERROR_LENGTH - 3] + "..."


# Built once: the dispatcher records every send with it, one message at a time.
_SENT = (
    outbox_t.update()
    .where(
        outbox_t.c.id.in_(sa.bindparam("sent_ids", expanding=True)),
        outbox_t.c.status == "claimed",
        outbox_t.c.claimed_by == sa.bindparam("sent_token"),
    )
    .values(
        status="sent",
        sent_at=sa.bindparam("sent_at_", type_=outbox_t.c.sent_at.type),
        lease_until=None,
        claimed_by=None,
        last_error=None,
    )
)


def mark_sent(conn: sa.Connection, ids: Sequence[int], token: str, now: datetime) -> int:
    params = {"sent_ids": _ids(ids), "sent_token": token, "sent_at_": now}
    return conn.execute(_SENT, params).rowcount


def mark_failed(
    conn: sa.Connection, ids: Sequence[int], token: str, now: datetime, error: str
) -> int:
    """Fail rows at once (a permanent error); `outbox retry ID` can put one back."""
    return conn.execute(
        outbox_t.update()
        .where(*_held(ids, token))
        .values(status="failed", lease_until=None, claimed_by=None, last_error=_error_text(error))
    ).rowcount


def set_error(conn: sa.Connection, ids: Sequence[int], error: str) -> None:
    conn.execute(
        outbox_t.update().where(outbox_t.c.id.in_(_ids(ids))).values(last_error=_error_text(error))
    )


def mark_cancelled(
    conn: sa.Connection, ids: Sequence[int], token: str, now: datetime, reason: str
) -> int:
    return conn.execute(
        outbox_t.update()
        .where(*_held(ids, token))
        .values(status="cancelled", lease_until=None, claimed_by=None, last_error=reason)
    ).rowcount


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from 30 s up to 2 h, each a
    random half to whole of that (jitter, so that many failed rows don't come back at once)."""
    rng = rng or random.Random()
    ceiling = min(FIRST_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)
    return ceiling * rng.uniform(0.5, 1.0)


def retry_later(
    conn: sa.Connection,
    claimed: Sequence[Claimed],
    token: str,
    now: datetime,
    error: str,
    *,
    retry_after: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    rng: random.Random | None = None,
) -> str:
    """A transient failure: pending again after a backoff (at least `retry_after` seconds),
    or failed once `max_attempts` attempts were made. Returns the rows' new status."""
    attempts = max(c.attempts for c in claimed)
    ids = [c.id for c in claimed]
    if attempts >= max_attempts:
        mark_failed(conn, ids, token, now, f"{error} (gave up after {attempts} attempts)")
        return "failed"
    wait = backoff(attempts, rng)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    conn.execute(
        outbox_t.update()
        .where(*_held(ids, token))
        .values(
            status="pending",
            due_at=now + wait,
            lease_until=None,
            claimed_by=None,
            last_error=_error_text(error),
        )
    )
    return "pending"


def _give_back(conn: sa.Connection, ids: Sequence[int], token: str, **values: Any) -> int:
    """Claimed rows back to pending, unsent: the claim's attempt is not counted."""
    if not ids:
        return 0
    return conn.execute(
        outbox_t.update()
        .where(*_held(ids, token))
        .values(
            status="pending",
            lease_until=None,
            claimed_by=None,
            attempts=outbox_t.c.attempts - 1,
            **values,
        )
    ).rowcount


def release(conn: sa.Connection, ids: Sequence[int], token: str) -> int:
    """Give claimed rows back unsent (the run is stopping): the attempt is not counted."""
    return _give_back(conn, ids, token)


def postpone(conn: sa.Connection, ids: Sequence[int], token: str, until: datetime) -> int:
    """Give claimed rows back to go at `until` (quiet hours, a digest window): not an attempt."""
    return _give_back(conn, ids, token, due_at=until)


def retry(conn: sa.Connection, row_id: int, now: datetime) -> None:
    """Put a failed row back to pending, due now, with its attempts counted afresh.

    :raise OutboxError: no such row, or it is not failed.
    """
    row = conn.execute(sa.select(outbox_t.c.status).where(outbox_t.c.id == row_id)).first()
    if row is None:
        raise OutboxError(f"no outbox message {row_id}")
    changed = conn.execute(
        outbox_t.update()
        .where(outbox_t.c.id == row_id, outbox_t.c.status == "failed")
        .values(status="pending", due_at=now, attempts=0)
    ).rowcount
    if not changed:
        raise OutboxError(f"outbox message {row_id} is {row.status}; only a failed one is retried")


def list_messages(conn: sa.Connection, status: str = "pending") -> list[dict[str, Any]]:
    """Rows as CONTRACT's `outbox --json`; `status` is one of STATUSES or all."""
    query = sa.select(outbox_t).order_by(outbox_t.c.due_at, outbox_t.c.id)
    if status != "all":
        query = query.where(outbox_t.c.status == status)
    return [
        {
            "id": row.id,
            "alert_id": row.alert_id,
            "kind": row.kind,
            "channel": row.channel,
            "recipient": row.recipient,
            "status": row.status,
            "attempts": row.attempts,
            "due_at": row.due_at.isoformat(),
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "last_error": row.last_error,
            "message_key": row.message_key,
        }
        for row in conn.execute(query)
    ]


def counts(conn: sa.Connection) -> dict[str, dict[str, int]]:
    """Rows per channel and status."""
    query = sa.select(outbox_t.c.channel, outbox_t.c.status, sa.func.count()).group_by(
        outbox_t.c.channel, outbox_t.c.status
    )
    found: dict[str, dict[str, int]] = {}
    for channel, status, n in conn.execute(query):
        found.setdefault(channel, {})[status] = n
    return found


# --- channel health --------------------------------------------------------------------------


def record_health(
    conn: sa.Connection, channel: str, now: datetime, *, ok: bool, error: str | None = None
) -> None:
    """A send succeeded (healthy again) or failed permanently (unhealthy, with the error)."""
    row = conn.execute(sa.select(health_t).where(health_t.c.channel == channel)).first()
    values: dict[str, Any] = (
        {"healthy": True, "last_success_at": now}
        if ok
        else {"healthy": False, "last_failure_at": now, "last_error": _error_text(error or "")}
    )
    if row is None:
        conn.execute(health_t.insert().values(channel=channel, changed_at=now, **values))
        return
    if row.healthy != values["healthy"]:
        values["changed_at"] = now
    conn.execute(health_t.update().where(health_t.c.channel == channel).values(**values))


def health(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """Each channel that has sent or failed: healthy, since when, and the last error."""
    found = {}
    for row in conn.execute(sa.select(health_t).order_by(health_t.c.channel)):
        found[row.channel] = {
            "healthy": row.healthy,
            "since": row.changed_at.isoformat(),
            "last_success_at": row.last_success_at.isoformat() if row.last_success_at else None,
            "last_failure_at": row.last_failure_at.isoformat() if row.last_failure_at else None,
            "last_error": None if row.healthy else row.last_error,
        }
    return found
