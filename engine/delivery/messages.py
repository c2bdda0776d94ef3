"""Claimed outbox rows as messages: whom to (the address and name from the people version
in force), what (absolute links), and which rows go together (a recipient's new alerts in
one digest; rows that went out together once keep their message's key)."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine.alerts import lifecycle as alert_ops
from engine.delivery.quiet_hours import Hold, severity_of
from engine.rules.pack import Routing
from engine.sqltime import LONDON
from models import PersonVersion, table_of
from notifications import outbox
from notifications.base import Item, Notification

log = logging.getLogger(__name__)

people_t = table_of(PersonVersion)


class Addresses:
    """Staff ids -> (email, display name) from the people version in force on a day."""

    def __init__(self, conn: sa.Connection, staff_ids: Iterable[str], day: date):
        ids = sorted(set(staff_ids))
        versions: dict[str, list[Any]] = {}
        columns = (people_t.c.staff_id, people_t.c.valid_from, people_t.c.email)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = sa.select(*columns, people_t.c.display_name).where(
                people_t.c.staff_id.in_(chunk)
            )
            for row in conn.execute(query.order_by(people_t.c.staff_id, people_t.c.valid_from)):
                versions.setdefault(row.staff_id, []).append(row)
        self._versions = versions
        self._day = day

    def of(self, staff_id: str) -> tuple[str | None, str | None]:
        """(email, display name); (None, None) for someone not in the feed."""
        found = self._versions.get(staff_id)
        if not found:
            return None, None
        index = bisect.bisect_right([v.valid_from for v in found], self._day)
        version = found[index - 1] if index else found[0]  # not yet in force: the first
        return version.email, version.display_name


def _is_address(recipient: str) -> bool:
    return "@" in recipient


def _routing_name(routing: Routing, address: str) -> str | None:
    for name, recipient in routing.recipients.items():
        if recipient.email == address:
            return name.replace("_", " ").capitalize()
    return None


@dataclass
class Message:
    """One notification to send, and the outbox rows it settles."""

    notification: Notification
    rows: list[outbox.Claimed]


def _link(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def _item(row: outbox.Claimed, base_url: str) -> Item:
    body = row.payload
    return Item(
        alert_id=int(body.get("alert_id") or 0),
        person_name=str(body.get("name") or body.get("staff_id") or "a colleague"),
        title=str(body.get("title") or ""),
        severity=severity_of(body),
        link=_link(base_url, str(body.get("link") or "/")),
    )


def _groups(rows: list[outbox.Claimed], digest: bool) -> list[list[outbox.Claimed]]:
    """Rows that go as one message: a key kept from an earlier attempt holds its rows
    together; with digests on, a recipient's new alerts on a channel go together."""
    groups: dict[tuple, list[outbox.Claimed]] = {}
    for row in rows:
        if row.message_key:
            key: tuple = ("key", row.message_key)
        elif digest and row.kind == "alert":
            key = ("digest", row.channel, row.recipient)
        else:
            key = ("row", row.id)
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def plan_messages(
    conn: sa.Connection,
    claimed: list[outbox.Claimed],
    routing: Routing,
    base_url: str,
    now: datetime,
    token: str,
    report: Any,
    hold: Hold,
) -> list[Message]:
    """Messages for a claimed batch (their keys stored); rows that can't go yet are given
    back with their new time, and rows that must not go are settled."""
    live = []
    later: dict[datetime, list[int]] = {}
    for row in claimed:
        if row.kind == "follow_up" and not alert_ops.follow_up_needed(conn, row.alert_id):
            outbox.mark_cancelled(
                conn, [row.id], token, now, "the alert was resolved as not needed"
            )
            if row.alert_id is not None:  # the follow-ups themselves too, not left queued
                alert_ops.cancel_follow_ups(conn, row.alert_id, now)
            report.cancelled += 1
        elif (until := hold.until(row)) is not None:
            later.setdefault(until, []).append(row.id)
        else:
            live.append(row)
    for until, ids in later.items():
        report.deferred += outbox.postpone(conn, ids, token, until)
    staff = [r.recipient for r in live if not _is_address(r.recipient)]
    addresses = Addresses(conn, staff, now.astimezone(LONDON).date())
    messages: list[Message] = []
    keys: list[tuple[outbox.Claimed, str]] = []
    for group in _groups(live, routing.digest is not None):
        first = group[0]
        if _is_address(first.recipient):
            address, name = first.recipient, _routing_name(routing, first.recipient)
        else:
            address, name = addresses.of(first.recipient)
        if not address:
            error = (
                f"no email address for staff id {first.recipient} in the people feed: "
                "add it to the person's record (email column), then `outbox retry` this row"
            )
            outbox.mark_failed(conn, [r.id for r in group], token, now, error)
            log.error("outbox %s: %s", ", ".join(str(r.id) for r in group), error)
            report.failed += len(group)
            continue
        items = tuple(_item(row, base_url) for row in group)
        kind = "digest" if len(group) > 1 else first.kind
        key = first.message_key or (
            outbox.own_key(first.id, kind) if len(group) == 1 else f"tt-digest-{first.id}"
        )
        follow_up = first.payload.get("follow_up") if first.kind == "follow_up" else None
        notification = Notification(
            key=key,
            kind=kind,
            channel=first.channel,
            address=address,
            recipient_name=name,
            items=items,
            follow_up=follow_up,
        )
        keys += [(row, key) for row in group if row.message_key != key]
        messages.append(Message(notification, group))
    outbox.set_keys(conn, keys)
    return messages
