"""The Team page's view: a supervisor's whole team sorted, one page of it in detail.

A chief constable supervises the whole force (engine.people.team: supervision follows the chain
down), so the page cannot show, or work out the details of, every person. The whole team is
sorted on figures that are cheap to read for thousands of people at once:

- the windows' points and counts come from each person's current snapshot, which holds them
  as of the newest evaluation (engine.scoring.snapshots), rather than summing their exposures again.
  `figures_as_of` says which moment that is, and the page shows it. Someone with no current
  snapshot (joined since, or nothing evaluated yet) is counted from their exposures at that
  same moment, so every row's figures are of one moment;
- the serious exposures of the last 7 days and the open alerts are counted per person;
- all of it, with each person's version in force, in one statement over engine.people.team's chain
  (no lists of thousands of ids to send).

Only the page's rows (PAGE_SIZE people) get their serious exposures listed. Opted-out people
are left out and only counted, as in engine.people.team.team_view.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.people.own_record import PERSON_WINDOWS
from engine.people.team import (
    _STAFF,
    SERIOUS_DAYS,
    SERIOUS_TIER,
    alerts_t,
    chain_statement,
    exposures_since,
    exposures_t,
    opt_outs_t,
    window_points,
    windows_for,
)
from engine.scoring.criteria import Criteria
from engine.sqltime import local_date, read_date, read_datetime
from models import Evaluation, Snapshot, table_of

PAGE_SIZE = 50  # people a page: a page renders in milliseconds whatever the team's size
snapshots_t = table_of(Snapshot)
evaluations_t = table_of(Evaluation)

_WINDOW_COLUMNS = {
    window: (snapshots_t.c[f"trauma_points_{window}"], snapshots_t.c[f"exposures_{window}"])
    for window in PERSON_WINDOWS
}
# The newest finished evaluation is the one whose figures the current snapshots hold (an
# evaluation of an earlier moment writes no current rows, and its as_of is older).
_VERSION_COLUMNS = ("display_name", "unit_id", "supervisor_id")  # in the order rows unpack
_NEWEST_EVALUATION = sa.select(sa.func.max(evaluations_t.c.as_of)).where(
    evaluations_t.c.finished_at.is_not(None)
)


def _team_statement() -> sa.Select:
    """Everyone the supervisor supervises on the day (engine.people.team's chain), each once, with
    their version in force (the chain carries it), current snapshot windows, whether they
    opted out, and their serious exposures and open alerts counted: the whole team in one
    statement."""
    chain = chain_statement(*_VERSION_COLUMNS).subquery("team_chain")
    shown = [chain.c[c] for c in _VERSION_COLUMNS]
    members = (
        sa.select(chain.c.staff_id, sa.func.min(chain.c.since).label("since"), *shown)
        .where(chain.c.staff_id != _STAFF)
        .group_by(chain.c.staff_id, *shown)
        .subquery("m")
    )
    e, a = exposures_t.alias("e"), alerts_t.alias("a")
    serious = (
        sa.select(sa.func.count())
        .where(
            e.c.staff_id == members.c.staff_id,
            e.c.at <= sa.bindparam("as_of", type_=e.c.at.type),
            e.c.at > sa.bindparam("start", type_=e.c.at.type),
            e.c.tier >= SERIOUS_TIER,
        )
        .scalar_subquery()
    )
    alerts = (
        sa.select(sa.func.count())
        .where(a.c.staff_id == members.c.staff_id, a.c.status != "resolved")
        .scalar_subquery()
    )
    windows = [c for pair in _WINDOW_COLUMNS.values() for c in pair]
    return (
        sa.select(
            members.c.staff_id,
            members.c.since,
            *(members.c[c] for c in _VERSION_COLUMNS),
            opt_outs_t.c.staff_id.label("opted_out"),
            snapshots_t.c.staff_id.label("snapshot"),
            serious.label("serious"),
            alerts.label("alerts"),
            *windows,
        )
        .select_from(members)
        .outerjoin(opt_outs_t, opt_outs_t.c.staff_id == members.c.staff_id)
        .outerjoin(
            snapshots_t,
            sa.and_(
                snapshots_t.c.staff_id == members.c.staff_id, snapshots_t.c.is_current.is_(True)
            ),
        )
    )


_TEAM = _team_statement()


# Sort keys a link may ask for, each on the light rows every team member gets.
SORTS = {
    "name": lambda p: (p["display_name"].casefold(), p["staff_id"]),
    "serious": lambda p: p["serious_count"],
    "points_30d": lambda p: p["points_30d"],
    "points_365d": lambda p: p["points_365d"],
    "alerts": lambda p: p["open_alerts"],
}
_PAIR = ("points", "exposures")  # a window's figures, in the order of the snapshot's columns
# the sorts' points (SORTS) and where their window is in PERSON_WINDOWS
_SORTED_WINDOWS = {f"points_{w}": PERSON_WINDOWS.index(w) for w in ("30d", "365d")}


def _sort_figures(figures) -> dict[str, float]:
    """The points the sorts read, rounded as the windows show them."""
    return {key: window_points(figures[2 * i]) for key, i in _SORTED_WINDOWS.items()}


def figures_moment(conn: sa.Connection, as_of: datetime) -> datetime | None:
    """The moment the current snapshots hold figures of (the newest finished evaluation's),
    or None when nothing was evaluated yet or that moment is later than `as_of`."""
    newest = conn.execute(_NEWEST_EVALUATION).scalar()
    if newest is None:
        return None
    newest = read_datetime(newest)
    return newest if newest <= as_of else None


def _windows_of(figures) -> dict[str, dict[str, float | int]]:
    """A snapshot's points and counts (PERSON_WINDOWS' columns, in pairs) as windows."""
    return {
        window: {
            "points": window_points(figures[2 * i]),
            "exposures": int(figures[2 * i + 1] or 0),
        }
        for i, window in enumerate(PERSON_WINDOWS)
    }


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

    `{"people": [rows in engine.people.team.team_view's shape], "total", "page", "pages", "first"
    (the page's first row's place, from 1), "opted_out_count", "figures_as_of"}`: `windows`
    are as of `figures_as_of` (the newest evaluation's moment, see figures_moment);
    `serious_7d` and `open_alerts` are at `as_of`. A page past the last is the last. `chain`
    is engine.people.team's chain of the day without the opted-out (each person with since
    when their chain has been in force), for handover() to reuse.

    :raise KeyError: `sort` is not a key of SORTS.
    """
    key = SORTS[sort]
    page_size = page_size or PAGE_SIZE
    params = {
        "staff": supervisor_id,
        "day": local_date(as_of),
        "as_of": as_of,
        "start": as_of - timedelta(days=SERIOUS_DAYS),
    }
    with engine.connect() as conn:
        moment = figures_moment(conn, as_of)
        rows, opted_out, unsnapshotted, chain = [], 0, [], {}
        # Thousands of rows for a chief constable: each is read as a tuple, and its windows
        # are made only for the page's rows (the sort needs two figures of each).
        for (
            staff_id,
            since,
            name,
            unit,
            boss,
            out,
            snapshot,
            serious,
            alerts,
            *figures,
        ) in conn.execute(_TEAM, params):
            if out is not None:
                opted_out += 1
                continue
            chain[staff_id] = read_date(since)
            row = {
                "staff_id": staff_id,
                "display_name": name,
                "unit_id": unit,
                "supervisor_id": boss,
                "direct": boss == supervisor_id,
                "figures": figures,
                "serious_count": int(serious),
                "open_alerts": int(alerts),
                **_sort_figures(figures),
            }
            if moment is None or snapshot is None:
                unsnapshotted.append(row)
            rows.append(row)
        if unsnapshotted:
            counted = windows_for(conn, [r["staff_id"] for r in unsnapshotted], moment or as_of)
            for row in unsnapshotted:
                windows = counted[row["staff_id"]]
                row["figures"] = [windows[w][k] for w in PERSON_WINDOWS for k in _PAIR]
                row.update(_sort_figures(row["figures"]))
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
        person["windows"] = _windows_of(person.pop("figures"))
        person["serious_7d"] = details[person["staff_id"]]
        for helper in ("serious_count", *_SORTED_WINDOWS):
            del person[helper]
    return {
        "people": shown,
        "total": len(rows),
        "page": page,
        "pages": pages,
        "first": (page - 1) * page_size + 1,
        "opted_out_count": opted_out,
        "figures_as_of": moment or as_of,
        "chain": chain,
    }
