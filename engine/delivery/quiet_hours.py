"""When a message may go: quiet hours and digest windows (routing.yaml).

Quiet hours are wall-clock time in their zone (Europe/London by default), so 20:00-07:00
stays 20:00-07:00 local on the nights the clocks change; a message due inside them, below
the `except` severities, waits until they end. An alert for a recipient who had an alert
message on that channel less than `digest` ago waits for the window to close, and then goes
with the others in one digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.rules.pack import Routing
from models import OutboxMessage, table_of
from notifications import outbox

outbox_t = table_of(OutboxMessage)


def quiet_until(quiet_hours: Mapping[str, Any] | None, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in (as UTC), or None outside them.

    The window is wall-clock time in its zone, so 20:00-07:00 stays 20:00-07:00 local on
    the nights the clocks change; a window across midnight ends on the next day.
    """
    if not quiet_hours:
        return None
    zone = ZoneInfo(quiet_hours.get("timezone", "Europe/London"))
    start = clock_time.fromisoformat(quiet_hours["from"])
    end = clock_time.fromisoformat(quiet_hours["to"])
    local = now.astimezone(zone)
    today, moment = local.date(), local.time()
    if start == end:
        return None
    if start < end:  # e.g. 01:00-06:00, inside one day
        inside, end_day = start <= moment < end, today
    else:  # across midnight
        inside = moment >= start or moment < end
        end_day = today + timedelta(days=1) if moment >= start else today
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def severity_of(payload: Mapping[str, Any]) -> str:
    return str(payload.get("severity") or "low")


def last_alert_sends(conn: sa.Connection, since: datetime) -> dict[tuple[str, str], datetime]:
    """When each (recipient, channel) last had an alert message sent, since `since`."""
    query = (
        sa.select(outbox_t.c.recipient, outbox_t.c.channel, sa.func.max(outbox_t.c.sent_at))
        .where(
            outbox_t.c.kind == "alert",
            outbox_t.c.status == "sent",
            outbox_t.c.sent_at > since,
        )
        .group_by(outbox_t.c.recipient, outbox_t.c.channel)
    )
    return {(recipient, channel): at for recipient, channel, at in conn.execute(query)}


@dataclass
class Hold:
    """What keeps a row back at `now`: the end of quiet hours, a digest window still open."""

    routing: Routing
    now: datetime
    last_sends: dict[tuple[str, str], datetime]

    def __post_init__(self) -> None:
        self.quiet_end = quiet_until(self.routing.quiet_hours, self.now)
        self.loud = set((self.routing.quiet_hours or {}).get("except", ()))

    def until(self, row: outbox.Claimed) -> datetime | None:
        if self.quiet_end is not None and severity_of(row.payload) not in self.loud:
            return self.quiet_end
        digest = self.routing.digest
        if digest and row.kind == "alert":
            previous = self.last_sends.get((row.recipient, row.channel))
            if previous is not None and previous + digest > self.now:
                return previous + digest
        return None

    def sent(self, rows: list[outbox.Claimed]) -> None:
        """A message of `rows` went: a recipient's next alerts wait for the digest window."""
        if rows[0].kind == "alert":
            self.last_sends[(rows[0].recipient, rows[0].channel)] = self.now
