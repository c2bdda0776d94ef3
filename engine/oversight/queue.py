"""The wellbeing team's queue: every unresolved alert, who is working it, and TRiM follow-ups.

Each alert is opened and worked one at a time (acknowledge and resolve are
engine.alerts.lifecycle'):
there is deliberately no bulk acknowledge, because each person deserves a look. An alert is
*overdue* when it is still open (not acknowledged) past routing's `escalate.after`, and
*escalated* once the escalation job has sent it on. Assignment is to a member of the wellbeing
team: someone the queue has seen signed in with the wellbeing role (`note_member`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.alerts.lifecycle import PeopleDirectory, event_row, force_day
from engine.rules.pack import Routing
from engine.sqltime import LONDON, read_datetime
from models import (
    Alert,
    AlertAssignment,
    AlertEvent,
    AlertFollowUp,
    Unit,
    WellbeingMember,
    table_of,
)

alerts_t = table_of(Alert)
assignments_t = table_of(AlertAssignment)
members_t = table_of(WellbeingMember)
events_t = table_of(AlertEvent)
follow_ups_t = table_of(AlertFollowUp)
units_t = table_of(Unit)

SEVERITIES = ("high", "medium", "low")
UNASSIGNED = "none"


class QueueError(ValueError):
    """A filter or an assignment the queue can't take, naming the field."""


@dataclass(frozen=True)
class QueueFilter:
    severity: str | None = None
    unit_id: str | None = None  # the unit or any unit below it, by the person's unit today
    older_than: timedelta | None = None
    overdue: bool | None = None
    escalated: bool | None = None
    assignee: str | None = None  # a staff id, or UNASSIGNED

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity not in SEVERITIES:
            raise QueueError(f"severity: must be one of {', '.join(SEVERITIES)}")
        if self.older_than is not None and self.older_than < timedelta(0):
            raise QueueError("older_than: must not be negative")


# --- the team --------------------------------------------------------------------------------


def note_member(conn: sa.Connection, staff_id: str, display_name: str, at: datetime) -> None:
    """Record that a wellbeing team member used the queue (so alerts can go to them)."""
    updated = conn.execute(
        members_t.update()
        .where(members_t.c.staff_id == staff_id)
        .values(display_name=display_name, last_seen_at=at)
    ).rowcount
    if not updated:
        conn.execute(
            members_t.insert().values(
                staff_id=staff_id, display_name=display_name, first_seen_at=at, last_seen_at=at
            )
        )


def members(engine: sa.Engine) -> list[dict[str, Any]]:
    """The wellbeing team as the queue knows it, by name."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(members_t).order_by(members_t.c.display_name)).all()
    return [
        {
            "staff_id": r.staff_id,
            "display_name": r.display_name,
            "last_seen_at": _iso(r.last_seen_at),
        }
        for r in rows
    ]


def assign(conn: sa.Connection, alert_id: int, assignee_id: str, actor: str, at: datetime) -> None:
    """Give an unresolved alert to a wellbeing team member (replacing any earlier assignee).

    :raise QueueError: no such alert, it is resolved, or the assignee is not in the team.
    """
    alert = conn.execute(sa.select(alerts_t.c.status).where(alerts_t.c.id == alert_id)).first()
    if alert is None:
        raise QueueError(f"alert_id: no alert {alert_id}")
    if alert.status == "resolved":
        raise QueueError(f"alert_id: alert {alert_id} is resolved")
    member = conn.execute(
        sa.select(members_t.c.staff_id).where(members_t.c.staff_id == assignee_id)
    ).first()
    if member is None:
        raise QueueError(f"assignee: {assignee_id} is not a member of the wellbeing team")
    values = {"assignee_id": assignee_id, "assigned_by": actor, "assigned_at": at}
    changed = conn.execute(
        assignments_t.update().where(assignments_t.c.alert_id == alert_id).values(**values)
    ).rowcount
    if not changed:
        conn.execute(assignments_t.insert().values(alert_id=alert_id, **values))
    conn.execute(events_t.insert(), event_row(alert_id, at, actor, "assigned", to=assignee_id))


# --- the queue -------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _units_below(conn: sa.Connection, unit_id: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for row in conn.execute(sa.select(units_t.c.unit_id, units_t.c.parent_id)):
        children.setdefault(row.parent_id, []).append(row.unit_id)
    found, todo = set(), [unit_id]
    while todo:
        unit = todo.pop()
        if unit not in found:
            found.add(unit)
            todo.extend(children.get(unit, ()))
    return found


def queue(
    engine: sa.Engine, routing: Routing, now: datetime, filters: QueueFilter | None = None
) -> list[dict[str, Any]]:
    """Unresolved alerts matching `filters`: overdue first, then by severity, oldest first."""
    filters = filters or QueueFilter()
    with engine.connect() as conn:
        query = (
            sa.select(alerts_t, assignments_t.c.assignee_id, assignments_t.c.assigned_at)
            .outerjoin(assignments_t, assignments_t.c.alert_id == alerts_t.c.id)
            .where(alerts_t.c.status != "resolved")
        )
        if filters.severity:
            query = query.where(alerts_t.c.severity == filters.severity)
        if filters.older_than is not None:
            query = query.where(alerts_t.c.opened_at <= now - filters.older_than)
        if filters.escalated is not None:
            escalated = alerts_t.c.escalated_at.is_not(None)
            query = query.where(escalated if filters.escalated else ~escalated)
        if filters.assignee == UNASSIGNED:
            query = query.where(assignments_t.c.assignee_id.is_(None))
        elif filters.assignee:
            query = query.where(assignments_t.c.assignee_id == filters.assignee)
        rows = conn.execute(query).all()
        people = PeopleDirectory.load(conn, {r.staff_id for r in rows})
        names = dict(conn.execute(sa.select(members_t.c.staff_id, members_t.c.display_name)).all())
        units = dict(conn.execute(sa.select(units_t.c.unit_id, units_t.c.name)).all())
        wanted_units = _units_below(conn, filters.unit_id) if filters.unit_id else None
    day = force_day(now)
    found = []
    for row in rows:
        opened = read_datetime(row.opened_at)
        overdue = (
            row.status == "open"
            and routing.escalate_after is not None
            and opened <= now - routing.escalate_after
        )
        if filters.overdue is not None and overdue != filters.overdue:
            continue
        person = people.at(row.staff_id, day)
        unit_id = person.unit_id if person else None
        if wanted_units is not None and unit_id not in wanted_units:
            continue
        found.append(
            {
                "alert_id": row.id,
                "staff_id": row.staff_id,
                "display_name": person.display_name if person else None,
                "unit_id": unit_id,
                "unit_name": units.get(unit_id),
                "rule_id": row.rule_id,
                "title": row.title,
                "severity": row.severity,
                "status": row.status,
                "opened_at": _iso(opened),
                "age_hours": round((now - opened).total_seconds() / 3600, 1),
                "overdue": overdue,
                "escalated": row.escalated_at is not None,
                "assignee_id": row.assignee_id,
                "assignee_name": names.get(row.assignee_id),
                "assigned_at": _iso(read_datetime(row.assigned_at)) if row.assigned_at else None,
                "recipients": [r["to"] for r in json.loads(row.recipients)],
            }
        )
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    found.sort(key=lambda a: (not a["overdue"], rank.get(a["severity"], 9), a["opened_at"]))
    return found


def follow_ups_this_week(engine: sa.Engine, now: datetime) -> list[dict[str, Any]]:
    """Follow-ups (TRiM's ~72 hours and ~28 days) due this London week, Monday to Sunday,
    still to come or already sent; cancelled ones (alert not needed) are left out."""
    today = now.astimezone(LONDON).date()
    monday = today - timedelta(days=today.weekday())
    start = datetime.combine(monday, datetime.min.time(), LONDON)
    end = start + timedelta(days=7)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                follow_ups_t,
                alerts_t.c.staff_id,
                alerts_t.c.rule_id,
                alerts_t.c.title,
                alerts_t.c.status.label("alert_status"),
                assignments_t.c.assignee_id,
            )
            .join(alerts_t, alerts_t.c.id == follow_ups_t.c.alert_id)
            .outerjoin(assignments_t, assignments_t.c.alert_id == alerts_t.c.id)
            .where(
                follow_ups_t.c.due_at >= start,
                follow_ups_t.c.due_at < end,
                follow_ups_t.c.status != "cancelled",
            )
            .order_by(follow_ups_t.c.due_at, follow_ups_t.c.id)
        ).all()
        people = PeopleDirectory.load(conn, {r.staff_id for r in rows})
    return [
        {
            "follow_up_id": r.id,
            "alert_id": r.alert_id,
            "staff_id": r.staff_id,
            "display_name": people.name(r.staff_id, today),
            "rule_id": r.rule_id,
            "title": r.title,
            "label": r.label,
            "due_at": _iso(read_datetime(r.due_at)),
            "status": r.status,
            "alert_status": r.alert_status,
            "assignee_id": r.assignee_id,
        }
        for r in rows
    ]
