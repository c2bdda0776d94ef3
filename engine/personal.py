"""What a person sees of their own record: windows of points and counts, and each exposure.

Computed from the stored exposures at any moment (`--as-of`), with the same window rule as
the snapshots (engine.indicators). An opted-out person sees only that they are opted out:
nothing about them is derived while they are out, and nothing is shown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.criteria import POINTS_DECIMALS, Criteria
from engine.indicators import WINDOWS, in_window
from engine.sqltime import read_datetime
from models import Exposure, OptOut, PersonVersion, table_of

PERSON_WINDOWS = ("30d", "90d", "365d", "5y")


class UnknownPerson(LookupError):
    """No person with this staff id has been ingested."""


def require_known(conn: sa.Connection, staff_id: str) -> None:
    """:raise UnknownPerson: no people record has this staff id."""
    people = table_of(PersonVersion)
    found = conn.execute(sa.select(people.c.staff_id).where(people.c.staff_id == staff_id).limit(1))
    if found.first() is None:
        raise UnknownPerson(staff_id)


def is_opted_out(conn: sa.Connection, staff_id: str) -> bool:
    opt_outs = table_of(OptOut)
    found = conn.execute(sa.select(opt_outs.c.staff_id).where(opt_outs.c.staff_id == staff_id))
    return found.first() is not None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def person_exposure(
    engine: sa.Engine,
    staff_id: str,
    as_of: datetime,
    *,
    history_days: int,
    criteria: Criteria | None = None,
) -> dict[str, Any]:
    """The CONTRACT's `exposure --json` document for one person at `as_of`.

    Exposures are listed newest first, back to the history horizon; each window counts the
    exposures with as_of - N days < at <= as_of. `criteria` supplies category labels.

    :raise UnknownPerson: no such staff id.
    """
    with engine.connect() as conn:
        require_known(conn, staff_id)
        if is_opted_out(conn, staff_id):
            return {"staff_id": staff_id, "opted_out": True}
        exposures = table_of(Exposure)
        rows = conn.execute(
            sa.select(exposures)
            .where(exposures.c.staff_id == staff_id)
            .where(exposures.c.at <= as_of)
            .where(exposures.c.at > as_of - timedelta(days=history_days))
        ).all()
    rows = sorted(rows, key=lambda r: (read_datetime(r.at), r.ref), reverse=True)
    labels = {c.id: c.label for c in criteria.categories} if criteria else {}
    windows = {}
    for window in PERSON_WINDOWS:
        inside = [r for r in rows if in_window(read_datetime(r.at), as_of, WINDOWS[window])]
        windows[window] = {
            "points": round(sum(r.points for r in inside), POINTS_DECIMALS),
            "exposures": len(inside),
        }
    return {
        "staff_id": staff_id,
        "opted_out": False,
        "as_of": _iso(as_of),
        "windows": windows,
        "exposures": [
            {
                "ref": r.ref,
                "feed": r.feed,
                "category": r.category,
                "label": labels.get(r.category),
                "tier": r.tier,
                "role": r.role,
                "points": r.points,
                "at": _iso(read_datetime(r.at)),
                "criteria_version": r.criteria_version,
            }
            for r in rows
        ],
    }
