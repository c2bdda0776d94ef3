"""Who people are today, from the people history: names for sign-in, the persona picker, and
the indicators the rules look at from a person's current snapshot.

Used by the web app's sign-in (web.auth) and the Me page; the team and access-log reads live in
engine.people.team and engine.people.access_log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.people.team import version_on
from models import OptOut, PersonVersion, Snapshot, table_of
from models.db import connected

people_t = table_of(PersonVersion)
snapshots_t = table_of(Snapshot)
opt_outs_t = table_of(OptOut)

# The snapshot figures shown to the person beside their exposure: the strain indicators the
# intervention rules read (CONTRACT section 2), in the order a person thinks of them.
OTHER_INDICATORS = (
    ("cancelled_rest_days_90d", "Cancelled rest days, last 90 days"),
    ("cancelled_rest_days_365d", "Cancelled rest days, last 12 months"),
    ("sickness_days_365d", "Sickness days, last 12 months"),
    ("open_investigations", "Open investigations as officer in charge"),
    ("service_years", "Years of service"),
)


@dataclass(frozen=True)
class Person:
    staff_id: str
    display_name: str
    unit_id: str
    supervisor_id: str | None
    rank_or_grade: str | None


# Built once, with the person as a parameter (as engine.people.team's statements): the Me page
# reads it on every request, and building a statement costs more than running it.
_CURRENT_SNAPSHOT = sa.select(snapshots_t).where(
    snapshots_t.c.staff_id == sa.bindparam("staff", type_=snapshots_t.c.staff_id.type),
    snapshots_t.c.is_current.is_(True),
)


def person_on(conn: sa.Connection, staff_id: str, day: date) -> Person | None:
    """The person's version in force on `day` (newest valid_from on or before it), or None."""
    row = version_on(conn, staff_id, day)
    if row is None:
        return None
    return Person(row.staff_id, row.display_name, row.unit_id, row.supervisor_id, row.rank_or_grade)


def display_name(engine: sa.Engine, staff_id: str, day: date) -> str | None:
    """The person's name on `day`, or None when nobody has this staff id (yet)."""
    with engine.connect() as conn:
        person = person_on(conn, staff_id, day)
    return person.display_name if person else None


def picker_people(engine: sa.Engine, day: date, limit: int = 60) -> list[dict[str, Any]]:
    """People for the demo's persona picker: those who supervise someone first, then others,
    each with whether they supervise anyone on `day`. Only the newest version of each person
    is read; leavers are left out."""
    newest = (
        sa.select(people_t.c.staff_id, sa.func.max(people_t.c.valid_from).label("valid_from"))
        .where(people_t.c.valid_from <= day)
        .group_by(people_t.c.staff_id)
        .subquery()
    )
    current = (
        sa.select(people_t)
        .join(
            newest,
            (people_t.c.staff_id == newest.c.staff_id)
            & (people_t.c.valid_from == newest.c.valid_from),
        )
        .where(sa.or_(people_t.c.leave_date.is_(None), people_t.c.leave_date > day))
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(current)).all()
    supervisors = {r.supervisor_id for r in rows if r.supervisor_id}
    ordered = sorted(rows, key=lambda r: (r.staff_id not in supervisors, r.staff_id))
    return [
        {
            "staff_id": r.staff_id,
            "display_name": r.display_name,
            "rank_or_grade": r.rank_or_grade,
            "unit_id": r.unit_id,
            "supervises": r.staff_id in supervisors,
        }
        for r in ordered[:limit]
    ]


def current_indicators(
    bind: sa.Engine | sa.Connection, staff_id: str
) -> list[dict[str, Any]] | None:
    """The other indicators from the person's current snapshot as [{"field","label","value"}],
    or None when they have no current snapshot (opted out, or not yet evaluated)."""
    with connected(bind) as conn:
        row = conn.execute(_CURRENT_SNAPSHOT, {"staff": staff_id}).first()
    if row is None:
        return None
    return [
        {"field": name, "label": label, "value": _shown(getattr(row, name))}
        for name, label in OTHER_INDICATORS
    ]


def _shown(value: Any) -> Any:
    """Years of service to one decimal place; counts as they are."""
    return round(value, 1) if isinstance(value, float) else value
