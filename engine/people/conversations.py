"""A person asks for a welfare conversation: one click, to their supervisor or the wellbeing team.

The request goes through the outbox like an alert's notifications (INTERFACES.md: kind
`conversation_request`, no alert, a link to the person's record page) and says nothing but who
asked: no figures, no incidents. "supervisor" is the person's supervisor in force today (the
people history, as for alerts); "wellbeing" is routing.yaml's `wellbeing` recipient. Each
request is kept in `conversation_requests` so the person can see that it went.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.alerts.lifecycle import PeopleDirectory, force_day
from engine.people.own_record import require_known
from engine.rules.pack import Routing
from engine.sqltime import read_datetime
from models import ConversationRequest, OutboxMessage, table_of
from models.db import connected

TARGETS = ("supervisor", "wellbeing")
TITLE = "asked for a welfare conversation"
# A request to the same person within this time is the same request (a double click, a
# reload): it is not sent twice.
REPEAT_WINDOW = timedelta(minutes=10)

requests_t = table_of(ConversationRequest)
outbox_t = table_of(OutboxMessage)


class ConversationError(Exception):
    """The request can't be sent as asked; the message says what to do instead."""


def _recipient(conn, staff_id: str, to: str, routing: Routing, at: datetime) -> tuple[str, list]:
    if to not in TARGETS:
        raise ConversationError(f"to: one of {', '.join(TARGETS)}, not {to!r}")
    if to == "wellbeing":
        team = routing.recipients.get("wellbeing")
        if team is None:
            raise ConversationError(
                "routing.yaml names no wellbeing recipient; ask your supervisor instead"
            )
        return team.email or team.name, list(team.channels)
    people = PeopleDirectory.load(conn, [staff_id])
    boss = people.supervisor(staff_id, force_day(at))
    if boss is None:
        raise ConversationError(
            "the people records show no supervisor for you today; ask the wellbeing team instead"
        )
    channels = (
        routing.recipients["supervisor"].channels
        if "supervisor" in routing.recipients
        else ("email",)
    )
    return boss, list(channels)


def request_conversation(
    engine: sa.Engine, staff_id: str, to: str, routing: Routing, at: datetime
) -> list[int]:
    """Queue a conversation request from `staff_id` to "supervisor" or "wellbeing"; returns
    the outbox ids (one per channel of the recipient). The same request again within
    REPEAT_WINDOW returns the first one's ids and queues nothing.

    :raise ConversationError: `to` is neither, or there is nobody to send it to.
    :raise UnknownPerson: no such staff id.
    """
    with engine.begin() as conn:
        require_known(conn, staff_id)
        recipient, channels = _recipient(conn, staff_id, to, routing, at)
        earlier = conn.execute(
            sa.select(requests_t.c.outbox_ids)
            .where(
                requests_t.c.staff_id == staff_id,
                requests_t.c.target == to,
                requests_t.c.recipient == recipient,
                requests_t.c.at > at - REPEAT_WINDOW,
                requests_t.c.at <= at,
            )
            .order_by(requests_t.c.at.desc())
            .limit(1)
        ).scalar()
        if earlier is not None:
            return json.loads(earlier)  # a second press of the button sends nothing more
        name = PeopleDirectory.load(conn, [staff_id]).name(staff_id, force_day(at))
        body = json.dumps(
            {
                "kind": "conversation_request",
                "staff_id": staff_id,
                "name": name,
                "title": TITLE,
                "severity": "low",
                "link": f"/people/{staff_id}",
            },
            sort_keys=True,
        )
        rows = [
            {
                "alert_id": None,
                "kind": "conversation_request",
                "channel": channel,
                "recipient": recipient,
                "payload": body,
                "status": "pending",
                "due_at": at,
                "created_at": at,
                "attempts": 0,
            }
            for channel in channels
        ]
        insert = outbox_t.insert().returning(outbox_t.c.id, sort_by_parameter_order=True)
        ids = list(conn.execute(insert, rows).scalars())
        conn.execute(
            requests_t.insert().values(
                at=at, staff_id=staff_id, target=to, recipient=recipient, outbox_ids=json.dumps(ids)
            )
        )
    return ids


# Built once, with the person and the limit as parameters: the Me page lists the latest
# requests on every request, and building a statement costs more than running it.
_LATEST = (
    sa.select(requests_t)
    .where(requests_t.c.staff_id == sa.bindparam("staff", type_=requests_t.c.staff_id.type))
    .order_by(requests_t.c.at.desc(), requests_t.c.id.desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_STATES = sa.select(outbox_t.c.id, outbox_t.c.status).where(
    outbox_t.c.id.in_(sa.bindparam("ids", expanding=True))
)


def requests_of(
    bind: sa.Engine | sa.Connection, staff_id: str, *, limit: int = 10
) -> list[dict[str, Any]]:
    """The person's latest requests, newest first: {"at", "to", "status"}, status being
    `sent` when every notification went, `failed` when one failed for good, else `queued`."""
    with connected(bind) as conn:
        rows = conn.execute(_LATEST, {"staff": staff_id, "limit": limit}).all()
        ids = [i for row in rows for i in json.loads(row.outbox_ids)]
        states = {i: status for i, status in conn.execute(_STATES, {"ids": ids})} if ids else {}
    found = []
    for row in rows:
        mine = [states.get(i) for i in json.loads(row.outbox_ids)]
        if mine and all(s == "sent" for s in mine):
            status = "sent"
        elif "failed" in mine:
            status = "failed"
        else:
            status = "queued"
        at = read_datetime(row.at)
        found.append(
            {"at": at.isoformat().replace("+00:00", "Z"), "to": row.target, "status": status}
        )
    return found
