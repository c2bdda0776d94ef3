"""The dispatcher: due outbox rows become messages, sent through the channels' transports.

One `dispatch` run:
1. gives back rows whose lease ran out (a dispatcher that died);
2. claims due rows in batches (counting the attempt before anything is sent);
3. gives back what may not go yet, with its new time: inside quiet hours (Europe/London by
   default, correct across the clock changes) everything below the `except` severities waits
   until they end; an alert for a recipient who had an alert message on that channel less
   than `digest` ago waits for the digest window to close, and then goes with the others;
4. turns the rest into `notifications.base.Notification`s (the recipient's address and name
   from the people version in force; absolute links from `base_url`; a recipient's new
   alerts in one digest), sends each, and records each result after its send: on a second
   connection, while the next message goes, with at most 16 results waiting to be recorded.

A message's idempotency key is stored on its rows before it is sent, so a copy sent again
after a crash (sent, its result not yet recorded: at most the waiting few) carries the same
key. A permanent Teams failure falls back to email for that
message. A follow-up whose alert was resolved as not needed is cancelled, not sent; a
follow-up is marked sent only when its message went out. A channel whose transport is not
configured is reported, and its rows stay pending.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.alerts import lifecycle as alert_ops
from engine.delivery.messages import Message, plan_messages
from engine.delivery.quiet_hours import Hold, last_alert_sends
from engine.rules.pack import Routing
from models import OutboxMessage, table_of
from notifications import outbox
from notifications.base import ChannelNotConfigured, Notification, Transport, TransportError

log = logging.getLogger(__name__)

BATCH = 100
GATHER = 0.01  # seconds the recorder waits for more results before it records
# Stop claiming and give rows back this long before the lease would run out.
LEASE_MARGIN = timedelta(seconds=60)
outbox_t = table_of(OutboxMessage)


@dataclass
class DispatchReport:
    """What one run did. `unconfigured`: channel -> the missing setting; their rows wait."""

    sent: int = 0  # messages sent (a digest is one)
    failed: int = 0  # rows failed for good in this run
    deferred: int = 0  # rows held back: quiet hours, digest window, transient failure
    retrying: int = 0  # of the deferred: transient failures to try again
    cancelled: int = 0  # follow-ups no longer needed
    fallbacks: int = 0  # Teams messages moved to email after a permanent failure
    unconfigured: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # pending rows per unconfigured channel
    health: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "deferred": self.deferred,
            "retrying": self.retrying,
            "cancelled": self.cancelled,
            "fallbacks": self.fallbacks,
            "unconfigured": {
                channel: {"missing": why, "pending": self.waiting.get(channel, 0)}
                for channel, why in self.unconfigured.items()
            },
            "channels": self.health,
        }


# --- recording results -----------------------------------------------------------------------


def _fallback_to_email(conn: sa.Connection, rows: list[outbox.Claimed], now: datetime) -> int:
    """Email rows for Teams rows that failed for good, unless the recipient already gets the
    same message by email."""
    made = 0
    for row in rows:
        payload = json.dumps(row.payload, sort_keys=True)
        twin = conn.execute(
            sa.select(outbox_t.c.id).where(
                outbox_t.c.channel == "email",
                outbox_t.c.recipient == row.recipient,
                outbox_t.c.kind == row.kind,
                outbox_t.c.payload == payload,
            )
        ).first()
        if twin is not None:
            continue
        conn.execute(
            outbox_t.insert().values(
                alert_id=row.alert_id,
                kind=row.kind,
                channel="email",
                recipient=row.recipient,
                payload=payload,
                status="pending",
                due_at=now,
                created_at=now,
                attempts=0,
            )
        )
        made += 1
    return made


def _record_all(
    conn: sa.Connection,
    results: list[tuple[Message, TransportError | None]],
    now: datetime,
    token: str,
    report: DispatchReport,
    rng: random.Random,
    healthy: set[str],
) -> None:
    """Record results that queued up together: the plain successes in one statement (the
    common case, and what keeps recording cheaper than sending), the rest one by one."""
    plain = [
        message
        for message, error in results
        if error is None
        and message.notification.channel in healthy
        and all(row.kind != "follow_up" for row in message.rows)
    ]
    if plain:
        outbox.mark_sent(conn, [row.id for m in plain for row in m.rows], token, now)
        report.sent += len(plain)
    done = {id(m) for m in plain}
    for message, error in results:
        if id(message) not in done:
            _record(conn, message, error, now, token, report, rng, healthy)


def _loggable(text: str, message: Message) -> str:
    """`text` for the service's log: without the recipient's address, which names them
    (jane.smith@...) and which mail servers quote in their refusals. The outbox row keeps the
    whole text for the administrator."""
    address = message.notification.address
    if not address:
        return text
    return re.sub(re.escape(address), "[recipient]", text, flags=re.IGNORECASE)


def _record(
    conn: sa.Connection,
    message: Message,
    error: TransportError | None,
    now: datetime,
    token: str,
    report: DispatchReport,
    rng: random.Random,
    healthy: set[str],
) -> None:
    ids = [row.id for row in message.rows]
    channel = message.notification.channel
    if error is None:
        outbox.mark_sent(conn, ids, token, now)
        if channel not in healthy:  # once a run is enough while it stays healthy
            outbox.record_health(conn, channel, now, ok=True)
            healthy.add(channel)
        report.sent += 1
        for row in message.rows:
            if row.kind == "follow_up" and row.payload.get("follow_up_id"):
                alert_ops.follow_up_sent(conn, int(row.payload["follow_up_id"]), now)
        return
    text = error.message  # names the channel and server, never a secret
    if error.permanent:
        # The write first: on SQLite a transaction that reads before it writes can find
        # its snapshot stale when another connection wrote meanwhile.
        outbox.mark_failed(conn, ids, token, now, text)
        fell_back = channel == "teams" and _fallback_to_email(conn, message.rows, now)
        if fell_back:
            text += f" (sent by email instead: {fell_back} new email message(s))"
            outbox.set_error(conn, ids, text)
            report.fallbacks += fell_back
        outbox.record_health(conn, channel, now, ok=False, error=error.message)
        healthy.discard(channel)
        report.failed += len(ids)
        log.error("outbox %s failed for good: %s", ids, _loggable(text, message))
        return
    status = outbox.retry_later(
        conn, message.rows, token, now, text, retry_after=error.retry_after, rng=rng
    )
    if status == "failed":
        report.failed += len(ids)
        log.error("outbox %s failed after its last attempt: %s", ids, _loggable(text, message))
    else:
        report.deferred += len(ids)
        report.retrying += len(ids)
        log.warning("outbox %s will be tried again: %s", ids, _loggable(text, message))


# --- the run ---------------------------------------------------------------------------------


class _Recorder:
    """Records send results on a connection and thread of its own, in the order they were
    sent, while the next message is sent: the database's round trips overlap the channel's.
    At most `depth` results wait, so a crash re-sends at most that many (each with its key)."""

    def __init__(self, engine, now, token, rng, depth: int = 16):
        self.report = DispatchReport()  # its own counts, added to the run's at the end
        self._conn = engine.connect()
        self._relaxed = self._conn.dialect.name == "postgresql"
        if self._relaxed:
            # A result PostgreSQL loses in a crash of its own means the message goes again
            # with the same key, as after a crash of ours; waiting for the disk on every
            # result would cost most of the rate. Only this connection, only while it's ours.
            self._conn.exec_driver_sql("SET synchronous_commit TO OFF")
            self._conn.commit()
        self._results: queue.Queue = queue.Queue(maxsize=depth)
        self._failure: BaseException | None = None
        self._args = (now, token, self.report, rng, set())  # last: channels known healthy
        self._thread = threading.Thread(target=self._work, name="outbox-recorder", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            items = [self._results.get()]
            if items[-1] is not None:
                # Let a few more results queue up: one statement records them together, and
                # the sending thread is interrupted less often.
                time.sleep(GATHER)
            while items[-1] is not None and not self._results.empty():
                items.append(self._results.get_nowait())  # results that queued up meanwhile
            try:
                results = [item for item in items if item is not None]
                if results and self._failure is None:
                    with self._conn.begin():
                        _record_all(self._conn, results, *self._args)
            except BaseException as failure:  # raised again in the dispatching thread
                self._failure = failure
            finally:
                for _ in items:
                    self._results.task_done()
            if items[-1] is None:
                return

    def put(self, message: Message, error: TransportError | None) -> None:
        self._check()
        self._results.put((message, error))

    def drain(self) -> None:
        """Wait until every result so far is recorded."""
        self._results.join()
        self._check()

    def close(self, *, check: bool = True) -> None:
        self._results.put(None)
        self._thread.join()
        if self._relaxed:
            self._conn.rollback()
            self._conn.exec_driver_sql("RESET synchronous_commit")
            self._conn.commit()
        self._conn.close()
        if check:
            self._check()

    def _check(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


def dispatch(
    engine: sa.Engine,
    transports: Mapping[str, Transport | ChannelNotConfigured],
    *,
    routing: Routing,
    base_url: str,
    now: datetime | None = None,
    limit: int | None = None,
    batch: int = BATCH,
    lease: timedelta = outbox.LEASE,
    rng: random.Random | None = None,
    after_send: Callable[[Notification], None] | None = None,
) -> DispatchReport:
    """Send what is due in the outbox once, through `transports` (channel -> Transport, or
    ChannelNotConfigured saying what is missing: that channel's rows stay pending).

    `now` is the run's clock (default: the current time); `limit` caps the rows claimed.
    `after_send` is called after each send and before its result is recorded (a seam for
    the crash tests).
    """
    now = now or datetime.now(UTC)
    rng = rng or random.Random()
    token = uuid.uuid4().hex
    report = DispatchReport()
    ready: dict[str, Transport] = {}
    for channel, transport in transports.items():
        if isinstance(transport, ChannelNotConfigured):
            report.unconfigured[channel] = str(transport)
        else:
            ready[channel] = transport
    with ExitStack() as stack:
        conn = stack.enter_context(engine.connect())
        with conn.begin():
            released = outbox.release_expired(conn, now)
            if released:
                log.warning("%d outbox rows left by a stopped dispatcher are due again", released)
            sends = last_alert_sends(conn, now - routing.digest) if routing.digest else {}
        if not ready:
            return _finish(conn, report, transports)
        hold = Hold(routing, now, sends)
        recorder = _Recorder(engine, now, token, rng)
        started = time.monotonic()
        claimed_total = 0
        sessions: dict[str, Transport] = {}

        def session(channel: str) -> Transport:
            if channel not in sessions:
                sessions[channel] = stack.enter_context(ready[channel].session())
            return sessions[channel]

        try:
            while limit is None or claimed_total < limit:
                size = batch if limit is None else min(batch, limit - claimed_total)
                with conn.begin():
                    claimed = outbox.claim(
                        conn, now, channels=ready, token=token, limit=size, lease=lease
                    )
                    messages = plan_messages(
                        conn, claimed, routing, base_url, now, token, report, hold
                    )
                if not claimed:
                    recorder.drain()  # a fallback recorded just now may have made new rows
                    with conn.begin():
                        if not outbox.any_due(conn, now, ready):
                            break
                    continue
                claimed_total += len(claimed)
                for index, message in enumerate(messages):
                    if timedelta(seconds=time.monotonic() - started) > lease - LEASE_MARGIN:
                        recorder.drain()
                        rest = [row.id for m in messages[index:] for row in m.rows]
                        with conn.begin():
                            outbox.release(conn, rest, token)
                        log.warning("dispatch stopped before its lease ended; %d wait", len(rest))
                        return _finish(conn, report, transports, recorder)
                    error = None
                    try:
                        session(message.notification.channel).send(message.notification)
                    except TransportError as failure:
                        error = failure
                    if after_send is not None:
                        after_send(message.notification)
                    if error is None:
                        hold.sent(message.rows)  # before it is recorded: the next batch's digests
                    recorder.put(message, error)
        except BaseException:
            recorder.close(check=False)  # the first failure is the one to see
            raise
        return _finish(conn, report, transports, recorder)


def _finish(
    conn: sa.Connection,
    report: DispatchReport,
    transports: Mapping[str, Transport | ChannelNotConfigured],
    recorder: _Recorder | None = None,
) -> DispatchReport:
    if recorder is not None:
        recorder.close()
        for name in ("sent", "failed", "deferred", "retrying", "fallbacks"):
            setattr(report, name, getattr(report, name) + getattr(recorder.report, name))
    with conn.begin():
        report.health = outbox.health(conn)
        per_channel = outbox.counts(conn)
    for channel in report.unconfigured:
        report.waiting[channel] = per_channel.get(channel, {}).get("pending", 0)
    # A channel rows name that has no transport at all is as good as unconfigured.
    for channel, statuses in per_channel.items():
        if channel not in transports and statuses.get("pending"):
            report.unconfigured[channel] = f"no transport for channel {channel!r}"
            report.waiting[channel] = statuses["pending"]
    for channel, why in report.unconfigured.items():
        if report.waiting.get(channel):
            log.warning(
                "%d %s messages wait: the channel is not configured (%s)",
                report.waiting[channel],
                channel,
                why,
            )
    return report
