"""The Team page's view: a supervisor's whole team sorted, one page of it in detail.

A chief constable supervises the whole force (engine.team: supervision follows the chain
down), so the page cannot show, or work out the details of, every person. The whole team is
sorted on figures that are cheap to read for thousands of people at once:

- the windows' points and counts come from each person's current snapshot, which holds them
  as of the newest evaluation (engine.snapshots): one query for the team rather than summing
  their exposures again. `figures_as_of` says which moment that is, and the page shows it.
  Someone with no current snapshot (joined since, or nothing evaluated yet) is counted from
  their exposures at that same moment, so every row's figures are of one moment;
- the serious exposures of the last 7 days and the open alerts are counted per person in one
  grouped query each.

Only the page's rows (PAGE_SIZE people) get their serious exposures listed. Opted-out people
are left out and only counted, as in engine.team.team_view.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.criteria import POINTS_DECIMALS, Criteria
from engine.personal import PERSON_WINDOWS
from engine.sqltime import local_date, read_datetime
from engine.team import (
    _IDS,
    SERIOUS_DAYS,
    SERIOUS_TIER,
    _chunks,
    _versions,
    exposures_since,
    exposures_t,
    open_alert_counts,
    opted_out_among,
    supervised_staff,
    windows_for,
)
from models import Evaluation, Snapshot

PAGE_SIZE = 50  # people a page: a page renders in milliseconds whatever the team's size
snapshots_t: sa.Table = Snapshot.__table__  # type: ignore[attr-defined]
evaluations_t: sa.Table = Evaluation.__table__  # type: ignore[attr-defined]

_WINDOW_COLUMNS = {
    window: (snapshots_t.c[f"trauma_points_{window}"], snapshots_t.c[f"exposures_{window}"])
    for window in PERSON_WINDOWS
}
_CURRENT_WINDOWS = sa.select(
    snapshots_t.c.staff_id, *(c for pair in _WINDOW_COLUMNS.values() for c in pair)
).where(snapshots_t.c.is_current.is_(True), snapshots_t.c.staff_id.in_(_IDS))
# The newest finished evaluation is the one whose figures the current snapshots hold (an
# evaluation of an earlier moment writes no current rows, and its as_of is older).
_NEWEST_EVALUATION = sa.select(sa.func.max(evaluations_t.c.as_of)).where(
    evaluations_t.c.finished_at.is_not(None)
)
_SERIOUS_COUNTS = (
    sa.select(exposures_t.c.staff_id, sa.func.count())
    .where(
        exposures_t.c.staff_id.in_(_IDS),
        exposures_t.c.at <= sa.bindparam("as_of", type_=exposures_t.c.at.type),
        exposures_t.c.at > sa.bindparam("start", type_=exposures_t.c.at.type),
        exposures_t.c.tier >= SERIOUS_TIER,
    )
    .group_by(exposures_t.c.staff_id)
)

# Sort keys a link may ask for, each on the light rows every team member gets.
SORTS = {
    "name": lambda p: (p["display_name"].casefold(), p["staff_id"]),
    "serious": lambda p: p["serious_count"],
    "points_30d": lambda p: p["windows"]["30d"]["points"],
    "points_365d": lambda p: p["windows"]["365d"]["points"],
    "alerts": lambda p: p["open_alerts"],
}


def figures_moment(conn: sa.Connection, as_of: datetime) -> datetime | None:
    """The moment the current snapshots hold figures of (the newest finished evaluation's),
    or None when nothing was evaluated yet or that moment is later than `as_of`."""
    newest = conn.execute(_NEWEST_EVALUATION).scalar()
    if newest is None:
        return None
    newest = read_datetime(newest)
    return newest if newest <= as_of else None


def current_windows(
    conn: sa.Connection, staff_ids: list[str], moment: datetime, *, snapshots: bool = True
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Each person's `exposure --json` windows at `moment`, read from their current snapshot
    when `snapshots` (the caller has checked `moment` is the snapshots'), else counted from
    their exposures (engine.team.windows_for), as are people with no current snapshot."""
    found: dict[str, dict[str, dict[str, float | int]]] = {}
    if snapshots:
        for chunk in _chunks(staff_ids):
            for staff_id, *figures in conn.execute(_CURRENT_WINDOWS, {"ids": chunk}):
                found[staff_id] = {
                    window: {
                        "points": round(float(figures[2 * i]), POINTS_DECIMALS),
                        "exposures": int(figures[2 * i + 1]),
                    }
                    for i, window in enumerate(PERSON_WINDOWS)
                }
    missing = [s for s in staff_ids if s not in found]
    if missing:
        found.update(windows_for(conn, missing, moment))
    return found


def serious_counts(conn: sa.Connection, staff_ids: list[str], as_of: datetime) -> dict[str, int]:
    """How many tier-2-or-higher exposures each person had in the 7 days to `as_of`."""
    counts = dict.fromkeys(staff_ids, 0)
    params = {"as_of": as_of, "start": as_of - timedelta(days=SERIOUS_DAYS)}
    for chunk in _chunks(staff_ids):
        rows = conn.execute(_SERIOUS_COUNTS, {"ids": chunk, **params})
        counts.update({staff_id: int(n) for staff_id, n in rows})
    return counts


def team_page(
    engine: sa.Engine,
    supervisor_id: str,
    as_of: datetime,
    *,
    sort: str = "serious",
    descending: bool = True,
    page: int = 1,
    page_size: int | None = None,
    criteria: Criteria | None = None,
) -> dict[str, Any]:
    """One page of the people `supervisor_id` supervises at `as_of`, the whole team sorted
    by `sort` (a key of SORTS; ties by name, A to Z), `page_size` (default PAGE_SIZE) a page.

    `{"people": [rows in engine.team.team_view's shape], "total", "page", "pages", "first"
    (the page's first row's place, from 1), "opted_out_count", "figures_as_of"}`: `windows`
    are as of `figures_as_of` (the newest evaluation's moment, see figures_moment);
    `serious_7d` and `open_alerts` are at `as_of`. A page past the last is the last.

    :raise KeyError: `sort` is not a key of SORTS.
    """
    key = SORTS[sort]
    page_size = page_size or PAGE_SIZE
    day = local_date(as_of)
    with engine.connect() as conn:
        staff = supervised_staff(conn, supervisor_id, day)
        out = opted_out_among(conn, staff)
        visible = [s for s in staff if s not in out]
        moment = figures_moment(conn, as_of)
        versions = _versions(conn, visible, day)
        windows = current_windows(conn, visible, moment or as_of, snapshots=moment is not None)
        serious = serious_counts(conn, visible, as_of)
        alerts = open_alert_counts(conn, visible)
        rows = [
            {
                "staff_id": staff_id,
                "display_name": versions[staff_id].display_name,
                "unit_id": versions[staff_id].unit_id,
                "supervisor_id": versions[staff_id].supervisor_id,
                "direct": versions[staff_id].supervisor_id == supervisor_id,
                "windows": windows[staff_id],
                "serious_count": serious[staff_id],
                "open_alerts": alerts[staff_id],
            }
            for staff_id in visible
        ]
        rows.sort(key=SORTS["name"])
        rows.sort(key=key, reverse=descending)
        pages = max(1, -(-len(rows) // page_size))
        page = min(max(page, 1), pages)
        shown = rows[(page - 1) * page_size : page * page_size]
        details = exposures_since(
            conn,
            [p["staff_id"] for p in shown],
            as_of - timedelta(days=SERIOUS_DAYS),
            as_of,
            min_tier=SERIOUS_TIER,
            criteria=criteria,
        )
    for person in shown:
        person["serious_7d"] = details[person["staff_id"]]
        del person["serious_count"]
    return {
        "people": shown,
        "total": len(rows),
        "page": page,
        "pages": pages,
        "first": (page - 1) * page_size + 1,
        "opted_out_count": len(out),
        "figures_as_of": moment or as_of,
    }
