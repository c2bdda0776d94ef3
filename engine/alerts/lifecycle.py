"""Alert lifecycle: who hears about an alert, acknowledgement, resolution, escalation, follow-ups.

States go open -> acknowledged -> resolved (or open -> resolved). Recipients are resolved from
the people history at the moment that matters: the supervisor in force on the alert's day
(London calendar), so a person who moved team last week alerts the new supervisor. A
supervisor's own alert goes to their own supervisor, never to themselves; with no supervisor
in force it goes to the escalation recipient (the wellbeing team) rather than nowhere, and an
alert that would reach nobody at all is refused loudly (`NoRecipient`). `self` (where a rule's
`notify` says so) is the person themself.

Follow-ups are queued when due and marked sent only when their message was sent (by
engine.delivery.dispatch); one for an alert resolved as not needed is cancelled, queued or not.

Escalation and follow-ups are jobs the scheduler calls (`escalate_overdue`, `send_follow_ups`);
each writes outbox rows and alert events in the caller's transaction.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from engine.rules import marks
from engine.rules.pack import Routing
from engine.sqltime import LONDON
from models import Alert, AlertEvent, AlertFollowUp, OutboxMessage, PersonVersion, table_of

log = logging.getLogger(__name__)

OUTCOMES = ("support_offered", "referred", "declined", "no_action_needed", "false_positive")
# Follow-ups stop when the alert turned out not to be needed; a person who was supported, or
# who declined, is still asked after again.
STOPS_FOLLOW_UPS = ("no_action_needed", "false_positive")
STATUSES = ("open", "acknowledged", "resolved")
# Recipients resolved from the people history rather than named in routing.yaml.
ROLES = ("supervisor", "self")
SELF_CHANNELS = ("email",)  # when routing.yaml does not say how to reach `self`

alerts_t = table_of(Alert)
events_t = table_of(AlertEvent)
follow_ups_t = table_of(AlertFollowUp)
outbox_t = table_of(OutboxMessage)
people_t = table_of(PersonVersion)


class AlertError(Exception):
    """An alert that does not exist, or a change its state does not allow."""


class UnknownAlert(AlertError):
    """No alert has this id (bad input, where a state refusal is a problem found)."""


class NoRecipient(AlertError):
    """An alert that would reach nobody: no recipient resolved and no escalation recipient."""


def force_day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


# --- people history --------------------------------------------------------------------------


class PeopleDirectory:
    """People versions for some staff and their supervisors; answers who was in force on a day."""

    def __init__(self, rows: Iterable[Any]):
        self._versions: dict[str, list[Any]] = {}
        for row in sorted(rows, key=lambda r: (r.staff_id, r.valid_from)):
            self._versions.setdefault(row.staff_id, []).append(row)

    @classmethod
    def load(cls, conn: sa.Connection, staff_ids: Iterable[str]) -> PeopleDirectory:
        wanted = set(staff_ids)
        rows = _versions_of(conn, wanted)
        supervisors = {r.supervisor_id for r in rows if r.supervisor_id} - wanted
        return cls([*rows, *_versions_of(conn, supervisors)])

    def at(self, staff_id: str, day: date) -> Any | None:
        """The version in force on `day`: the newest `valid_from` on or before it."""
        versions = self._versions.get(staff_id, [])
        index = bisect.bisect_right([v.valid_from for v in versions], day)
        return versions[index - 1] if index else None

    def supervisor(self, staff_id: str, day: date) -> str | None:
        """The supervisor in force on `day`, if they are known, in post, and not the person."""
        person = self.at(staff_id, day)
        boss = person.supervisor_id if person else None
        if not boss or boss == staff_id:
            return None
        version = self.at(boss, day)
        if version is None or (version.leave_date is not None and version.leave_date <= day):
            return None
        return boss

    def name(self, staff_id: str, day: date) -> str | None:
        person = self.at(staff_id, day)
        return person.display_name if person else None


def _versions_of(conn: sa.Connection, staff_ids: set[str]) -> list[Any]:
    ids = sorted(staff_ids)
    rows: list[Any] = []
    columns = [people_t.c[n] for n in ("staff_id", "valid_from", "display_name", "unit_id")]
    columns += [people_t.c.supervisor_id, people_t.c.leave_date]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += conn.execute(sa.select(*columns).where(people_t.c.staff_id.in_(chunk))).all()
    return rows


def recipients_for(
    people: PeopleDirectory, routing: Routing, notify: Iterable[str], staff_id: str, at: datetime
) -> list[dict[str, Any]]:
    """Each recipient as {"name", "to", "channels"}: "to" is a staff id (the supervisor, or
    the person for `self`), or an address.

    :raise NoRecipient: nobody resolved and routing.yaml names no escalation recipient.
    """
    day = force_day(at)
    found: list[dict[str, Any]] = []
    fallback = routing.recipients.get(routing.escalate_to or "")
    for name in notify:
        recipient = routing.recipients.get(name)
        if name == "self":
            channels = list(recipient.channels) if recipient else list(SELF_CHANNELS)
            found.append({"name": name, "to": staff_id, "channels": channels})
            continue
        if recipient is None:
            log.error("alert for %s names recipient %r, not in routing.yaml", staff_id, name)
            continue
        if name != "supervisor":
            found.append(
                {"name": name, "to": recipient.email or name, "channels": list(recipient.channels)}
            )
            continue
        boss = people.supervisor(staff_id, day)
        if boss:
            found.append({"name": name, "to": boss, "channels": list(recipient.channels)})
            continue
        if fallback is None:
            log.error(
                "no supervisor in force for %s on %s and no escalation recipient", staff_id, day
            )
            continue
        found.append({**_as_recipient(fallback), "instead_of": "supervisor"})
    if not found and fallback is not None:
        found.append({**_as_recipient(fallback), "instead_of": ", ".join(notify)})
    if not found:
        raise NoRecipient(
            f"an alert for {staff_id} on {day} would reach nobody (notify: {', '.join(notify)}) "
            "and routing.yaml has no escalate.to: add an escalation recipient"
        )
    unique: dict[str, dict[str, Any]] = {}
    for item in found:
        unique.setdefault(item["to"], item)
    return list(unique.values())


def _as_recipient(recipient: Any) -> dict[str, Any]:
    return {
        "name": recipient.name,
        "to": recipient.email or recipient.name,
        "channels": list(recipient.channels),
    }


def payload(kind: str, alert: Mapping[str, Any], name: str | None, **extra: Any) -> str:
    """What a notification says: who needs a conversation, why in one line, and a link."""
    body = {
        "kind": kind,
        "alert_id": alert["id"],
        "staff_id": alert["staff_id"],
        "name": name,
        "title": alert["title"],
        "severity": alert["severity"],
        "link": f"/alerts/{alert['id']}",
        **extra,
    }
    return json.dumps(body, sort_keys=True)


def outbox_rows(
    alert_id: int, kind: str, recipients: Iterable[Mapping[str, Any]], body: str, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "alert_id": alert_id,
            "kind": kind,
            "channel": channel,
            "recipient": recipient["to"],
            "payload": body,
            "status": "pending",
            "due_at": now,
            "created_at": now,
            "attempts": 0,
        }
        for recipient in recipients
        for channel in recipient["channels"]
    ]


def event_row(alert_id: int, at: datetime, actor: str, action: str, **detail: Any) -> dict:
    text = json.dumps(detail, sort_keys=True) if detail else None
    return {"alert_id": alert_id, "at": at, "actor": actor, "action": action, "detail": text}


# --- acknowledging and resolving -------------------------------------------------------------


def _alert(conn: sa.Connection, alert_id: int) -> Any:
    row = conn.execute(sa.select(alerts_t).where(alerts_t.c.id == alert_id)).first()
    if row is None:
        raise UnknownAlert(f"no alert {alert_id}")
    return row


def acknowledge(
    conn: sa.Connection, alert_id: int, actor: str, at: datetime, note: str | None = None
) -> None:
    """Mark an open alert as seen by `actor`. :raise AlertError: missing, or not open."""
    row = _alert(conn, alert_id)
    changed = conn.execute(
        alerts_t.update()
        .where(alerts_t.c.id == alert_id, alerts_t.c.status == "open")
        .values(status="acknowledged", acknowledged_at=at, acknowledged_by=actor)
    ).rowcount
    if not changed:
        raise AlertError(
            f"alert {alert_id} is {row.status}; only an open alert can be acknowledged"
        )
    conn.execute(events_t.insert(), event_row(alert_id, at, actor, "acknowledged", note=note))


def resolve(
    conn: sa.Connection,
    alert_id: int,
    actor: str,
    outcome: str,
    at: datetime,
    note: str | None = None,
) -> None:
    """Close an alert with the conversation's outcome. :raise AlertError: bad outcome or state."""
    if outcome not in OUTCOMES:
        raise AlertError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    row = _alert(conn, alert_id)
    changed = conn.execute(
        alerts_t.update()
        .where(alerts_t.c.id == alert_id, alerts_t.c.status.in_(("open", "acknowledged")))
        .values(
            status="resolved",
            resolved_at=at,
            resolved_by=actor,
            outcome=outcome,
            note=note,
            open_key=None,
        )
    ).rowcount
    if not changed:
        raise AlertError(f"alert {alert_id} is already resolved")
    conn.execute(
        events_t.insert(), event_row(alert_id, at, actor, "resolved", outcome=outcome, note=note)
    )
    if outcome in STOPS_FOLLOW_UPS:
        cancel_follow_ups(conn, alert_id, at)
    # Unchanged figures were skipped while this alert was open; look at them again now.
    marks.recheck(conn, row.staff_id, at)


def cancel_follow_ups(conn: sa.Connection, alert_id: int, at: datetime) -> None:
    """The alert was not needed: its follow-ups, and their messages not yet sent, are off."""
    conn.execute(
        follow_ups_t.update()
        .where(
            follow_ups_t.c.alert_id == alert_id,
            follow_ups_t.c.status.in_(("pending", "queued")),
        )
        .values(status="cancelled", done_at=at)
    )
    conn.execute(
        outbox_t.update()
        .where(
            outbox_t.c.alert_id == alert_id,
            outbox_t.c.kind == "follow_up",
            outbox_t.c.status.in_(("pending", "failed")),
        )
        .values(status="cancelled", last_error="the alert was resolved as not needed")
    )


def follow_up_sent(conn: sa.Connection, follow_up_id: int, at: datetime) -> None:
    """A follow-up's message went out (engine.delivery.dispatch): only now is the follow-up sent."""
    conn.execute(
        follow_ups_t.update()
        .where(follow_ups_t.c.id == follow_up_id, follow_ups_t.c.status == "queued")
        .values(status="sent", done_at=at)
    )


def follow_up_needed(conn: sa.Connection, alert_id: int | None) -> bool:
    """False for an alert resolved as not needed (or gone): its follow-ups must not go."""
    if alert_id is None:
        return False
    row = conn.execute(
        sa.select(alerts_t.c.status, alerts_t.c.outcome).where(alerts_t.c.id == alert_id)
    ).first()
    return row is not None and not (row.status == "resolved" and row.outcome in STOPS_FOLLOW_UPS)


# --- scheduler jobs --------------------------------------------------------------------------


def escalate_overdue(conn: sa.Connection, routing: Routing, now: datetime) -> list[int]:
    """Alerts still open (not acknowledged) after routing's escalate.after go to escalate.to."""
    if routing.escalate_after is None or routing.escalate_to is None:
        return []
    target = routing.recipients[routing.escalate_to]
    recipient = {
        "name": target.name,
        "to": target.email or target.name,
        "channels": target.channels,
    }
    overdue = conn.execute(
        sa.select(alerts_t).where(
            alerts_t.c.status == "open",
            alerts_t.c.escalated_at.is_(None),
            alerts_t.c.opened_at <= now - routing.escalate_after,
        )
    ).all()
    people = PeopleDirectory.load(conn, {row.staff_id for row in overdue})
    done = []
    for row in overdue:
        claimed = conn.execute(
            alerts_t.update()
            .where(alerts_t.c.id == row.id, alerts_t.c.escalated_at.is_(None))
            .values(escalated_at=now)
        ).rowcount
        if not claimed:
            continue  # another scheduler run took it
        body = payload("escalation", row._mapping, people.name(row.staff_id, force_day(now)))
        conn.execute(outbox_t.insert(), outbox_rows(row.id, "escalation", [recipient], body, now))
        conn.execute(
            events_t.insert(), event_row(row.id, now, "system", "escalated", to=recipient["to"])
        )
        done.append(row.id)
    return done


def send_follow_ups(conn: sa.Connection, routing: Routing, now: datetime) -> list[int]:
    """Queue the follow-up reminders now due, to the alert's recipients as resolved today.

    A follow-up is `queued` here and `sent` once its message went out; one whose alert was
    resolved as not needed is cancelled instead. Returns the queued follow-ups' ids."""
    due = conn.execute(
        sa.select(follow_ups_t, alerts_t)
        .join(alerts_t, alerts_t.c.id == follow_ups_t.c.alert_id)
        .where(follow_ups_t.c.status == "pending", follow_ups_t.c.due_at <= now)
        .order_by(follow_ups_t.c.due_at)
    ).all()
    people = PeopleDirectory.load(conn, {row.staff_id for row in due})
    sent = []
    for row in due:
        follow_up_id = row._mapping[follow_ups_t.c.id]
        alert = {c.name: row._mapping[c] for c in alerts_t.c}
        if alert["status"] == "resolved" and alert["outcome"] in STOPS_FOLLOW_UPS:
            cancel_follow_ups(conn, alert["id"], now)
            continue
        claimed = conn.execute(
            follow_ups_t.update()
            .where(follow_ups_t.c.id == follow_up_id, follow_ups_t.c.status == "pending")
            .values(status="queued")
        ).rowcount
        if not claimed:
            continue
        recipients = recipients_for(people, routing, json.loads(alert["notify"]), row.staff_id, now)
        name = people.name(row.staff_id, force_day(now))
        body = payload("follow_up", alert, name, follow_up=row.label, follow_up_id=follow_up_id)
        conn.execute(
            outbox_t.insert(), outbox_rows(alert["id"], "follow_up", recipients, body, now)
        )
        event = event_row(alert["id"], now, "system", "follow_up", label=row.label)
        conn.execute(events_t.insert(), event)
        sent.append(follow_up_id)
    return sent


def list_alerts(
    conn: sa.Connection,
    status: str = "open",
    *,
    recipient: str | None = None,
    unit: str | None = None,
    rule: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts as CONTRACT's `alerts --json`, oldest first.

    `status` is open, acknowledged, resolved, unresolved (open or acknowledged) or all;
    `recipient` keeps the alerts sent to that staff id or address, `unit` those about a person
    who was in that unit on the day the alert opened (London calendar: the team whose
    supervisor heard about it), `rule` those of that rule id.
    """
    query = sa.select(alerts_t).order_by(alerts_t.c.opened_at, alerts_t.c.id)
    if status == "unresolved":
        query = query.where(alerts_t.c.status != "resolved")
    elif status != "all":
        query = query.where(alerts_t.c.status == status)
    if rule is not None:
        query = query.where(alerts_t.c.rule_id == rule)
    if recipient is not None:  # the recipients are JSON text: LIKE finds candidates
        escaped = recipient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(alerts_t.c.recipients.like(f'%"{escaped}"%', escape="\\"))
    rows = conn.execute(query).all()
    if recipient is not None:
        rows = [r for r in rows if recipient in (x["to"] for x in json.loads(r.recipients))]
    if unit is not None:
        people = PeopleDirectory.load(conn, {r.staff_id for r in rows})
        rows = [r for r in rows if _unit_on(people, r.staff_id, r.opened_at) == unit]
    return [
        {
            "alert_id": row.id,
            "staff_id": row.staff_id,
            "rule_id": row.rule_id,
            "severity": row.severity,
            "status": row.status,
            "opened_at": row.opened_at.isoformat(),
            "recipients": [r["to"] for r in json.loads(row.recipients)],
            "outcome": row.outcome,
            "escalated": row.escalated_at is not None,
        }
        for row in rows
    ]


def _unit_on(people: PeopleDirectory, staff_id: str, opened_at: datetime) -> str | None:
    version = people.at(staff_id, force_day(_aware(opened_at)))
    return version.unit_id if version else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def forget_person(conn: sa.Connection, staff_id: str, now: datetime) -> dict[str, int]:
    """An opt-out: delete the person's alerts and everything hanging off them, and blank what
    the decision log saw about them (the chain still verifies). Counts what went."""
    from engine.alerts import audit
    from models import ExposureMark, RuleMark

    ids = list(
        conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.staff_id == staff_id)).scalars()
    )
    gone = {"alerts": len(ids)}
    for name, table in (("outbox", outbox_t), ("follow_ups", follow_ups_t), ("events", events_t)):
        gone[name] = (
            conn.execute(table.delete().where(table.c.alert_id.in_(ids))).rowcount if ids else 0
        )
    conn.execute(alerts_t.delete().where(alerts_t.c.staff_id == staff_id))
    for model in (RuleMark, ExposureMark):
        table = table_of(model)
        conn.execute(table.delete().where(table.c.staff_id == staff_id))
    gone["decisions_erased"] = audit.erase(conn, staff_id, now)
    return gone
