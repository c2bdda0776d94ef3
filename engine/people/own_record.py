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


# Statements are built once, with the person and the moments as parameters: the Me page and
# `GET /me/exposure` read them on every request, and building a statement costs more than
# running it.
_people, _opt_outs, _exposures = table_of(PersonVersion), table_of(OptOut), table_of(Exposure)
_STAFF = sa.bindparam("staff", type_=_people.c.staff_id.type)
_KNOWN = sa.select(_people.c.staff_id).where(_people.c.staff_id == _STAFF).limit(1)
_OPTED_OUT = sa.select(_opt_outs.c.staff_id).where(_opt_outs.c.staff_id == _STAFF)
# Known and opted out, in one round trip.
_STANDING = sa.select(_KNOWN.exists(), _OPTED_OUT.exists())
_EXPOSURES = sa.select(_exposures).where(
    _exposures.c.staff_id == _STAFF,
    _exposures.c.at <= sa.bindparam("as_of", type_=_exposures.c.at.type),
    _exposures.c.at > sa.bindparam("start", type_=_exposures.c.at.type),
)


def require_known(conn: sa.Connection, staff_id: str) -> None:
    """:raise UnknownPerson: no people record has this staff id."""
    if conn.execute(_KNOWN, {"staff": staff_id}).first() is None:
        raise UnknownPerson(staff_id)


def is_opted_out(conn: sa.Connection, staff_id: str) -> bool:
    return conn.execute(_OPTED_OUT, {"staff": staff_id}).first() is not None


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
        known, opted_out = conn.execute(_STANDING, {"staff": staff_id}).one()
        if not known:
            raise UnknownPerson(staff_id)
        if opted_out:
            return {"staff_id": staff_id, "opted_out": True}
        start = as_of - timedelta(days=history_days)
        found = conn.execute(_EXPOSURES, {"staff": staff_id, "as_of": as_of, "start": start})
        # each row with its moment, read once
        rows = [(read_datetime(r.at), r) for r in found]
    rows.sort(key=lambda pair: (pair[0], pair[1].ref), reverse=True)
    labels = {c.id: c.label for c in criteria.categories} if criteria else {}
    windows = {}
    for window in PERSON_WINDOWS:
        inside = [r for at, r in rows if in_window(at, as_of, WINDOWS[window])]
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
                "at": _iso(at),
                "criteria_version": r.criteria_version,
            }
            for at, r in rows
        ],
    }
