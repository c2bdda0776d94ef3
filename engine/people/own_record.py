"""What a person sees of their own record: windows of points and counts, and each exposure.

Computed from the stored exposures at any moment (`--as-of`), with the same window rule as
the snapshots (engine.scoring.indicators). An opted-out person sees only that they are opted out:
nothing about them is derived while they are out, and nothing is shown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.scoring.criteria import POINTS_DECIMALS, Criteria
from engine.scoring.indicators import WINDOWS, in_window
from engine.sqltime import read_datetime
from models import Exposure, Incident, OptOut, PersonVersion, table_of
from models.db import connected

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


def records_begin(conn: sa.Connection) -> datetime | None:
    """When the force's incident records begin: the first C&C incident stored (an index
    lookup), or None when there is none. A window reaching further back than this counts
    less than its length of history."""
    incidents = table_of(Incident)
    return read_datetime(conn.execute(sa.select(sa.func.min(incidents.c.created_at))).scalar())


def window_coverage(
    document: dict[str, Any], begins: datetime | None, history_days: int
) -> dict[str, Any]:
    """`document` (person_exposure's) with, for each window, whether the records cover all
    of it (`complete`), and `history_from`: the earliest moment they cover (the first C&C
    incident, or the person's own earliest exposure if that is older, and never before the
    history horizon)."""
    if document.get("opted_out"):
        return document
    as_of = read_datetime(document["as_of"].replace("Z", "+00:00"))
    starts = [begins] if begins else []
    starts += [read_datetime(e["at"].replace("Z", "+00:00")) for e in document["exposures"]]
    start = max(min(starts), as_of - timedelta(days=history_days)) if starts else None
    windows = {
        name: {
            **figures,
            "complete": start is not None and as_of - timedelta(days=WINDOWS[name]) >= start,
        }
        for name, figures in document["windows"].items()
    }
    return {**document, "windows": windows, "history_from": _iso(start) if start else None}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def person_exposure(
    bind: sa.Engine | sa.Connection,
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
    with connected(bind) as conn:
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
