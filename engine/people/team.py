"""A supervisor's team: who they supervise today, their figures, and who joined lately.

Supervision, precisely (CONTRACT section 5: "the people whose supervisor in force today they
are, directly or through the teams they supervise"):

- A person's version in force on a day D is their people row with the newest `valid_from` on
  or before D (engine.alerts.lifecycle.PeopleDirectory reads it the same way). D is the force's
  calendar
  date (Europe/London) of the moment asked about.
- A person is *in post* on D when that version has no `leave_date`, or one after D.
- S supervises P on D directly when P is in post and P's version in force names S as
  `supervisor_id`. S supervises P through a team when P's supervisor in force is someone S
  supervises: the relation follows the supervisor chain down, transitively, so an inspector
  sees their sergeants and the sergeants' constables. Everyone on the chain must be in post
  (a supervisor who has left passes nobody on), and S must be in post too.
- Nobody supervises themselves, and a loop in the people feed (A supervises B supervises A)
  ends: each person is counted once.

So a supervisor whose person moved to another team yesterday no longer sees them today, and
the new supervisor does. Opted-out people stay supervised (for who may do what), but every
view here leaves them out and shows only how many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.people.own_record import PERSON_WINDOWS
from engine.scoring.criteria import POINTS_DECIMALS, Criteria
from engine.scoring.indicators import WINDOWS
from engine.sqltime import local_date, read_date, read_datetime
from models import Alert, Exposure, OptOut, PersonVersion, table_of

people_t = table_of(PersonVersion)
exposures_t = table_of(Exposure)
alerts_t = table_of(Alert)
opt_outs_t = table_of(OptOut)

SERIOUS_TIER = 2  # "tier 2 or higher": who has just had a serious exposure
SERIOUS_DAYS = 7
HANDOVER_DAYS = 30
_CHUNK = 500  # ids per IN list: well inside every database's parameter limit
_MAX_CHAIN = 50  # a supervisor chain longer than any force's rank structure is a loop


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


# Statements are built once, with the person and the day as parameters: the navigation of
# every page asks whether the user supervises anyone, and building a statement over aliases of
# the people table costs more than running it.
_STAFF = sa.bindparam("staff", type_=people_t.c.staff_id.type)
_DAY = sa.bindparam("day", type_=people_t.c.valid_from.type)


def _in_force(version: sa.Table) -> sa.ColumnElement[bool]:
    """`version` is its person's row in force on the day."""
    newer = people_t.alias("newer")
    newest = (
        sa.select(sa.func.max(newer.c.valid_from))
        .where(newer.c.staff_id == version.c.staff_id, newer.c.valid_from <= _DAY)
        .scalar_subquery()
    )
    return version.c.valid_from == newest


def _in_post(version: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(version.c.leave_date.is_(None), version.c.leave_date > _DAY)


_VERSION_ON = (
    sa.select(people_t)
    .where(people_t.c.staff_id == _STAFF, people_t.c.valid_from <= _DAY)
    .order_by(people_t.c.valid_from.desc())
    .limit(1)
)


def chain_statement(*columns: str) -> sa.Select:
    """Everyone the supervisor (parameter `staff`) supervises on the day (`day`): staff_id,
    `since` (the newest valid_from along their chain) and the named columns of their version
    in force. A person reached twice (a loop in the feed) comes once per `since`."""
    me, top, below = people_t.alias("me"), people_t.alias("top"), people_t.alias("below")
    in_post_today = (
        sa.select(me.c.staff_id)
        .where(me.c.staff_id == _STAFF, _in_force(me), _in_post(me))
        .exists()
    )
    base = sa.select(
        top.c.staff_id, top.c.valid_from.label("since"), *(top.c[c] for c in columns)
    ).where(top.c.supervisor_id == _STAFF, _in_force(top), _in_post(top), in_post_today)
    chain = base.cte("chain", recursive=True)
    since = sa.case((chain.c.since > below.c.valid_from, chain.c.since), else_=below.c.valid_from)
    step = (
        sa.select(below.c.staff_id, since, *(below.c[c] for c in columns))
        .join(chain, below.c.supervisor_id == chain.c.staff_id)
        .where(_in_force(below), _in_post(below))
    )
    # UNION (not UNION ALL) drops repeats, so a loop in the feed ends.
    chain = chain.union(step)
    return sa.select(chain.c.staff_id, chain.c.since, *(chain.c[c] for c in columns))


def _is_supervisor_statement() -> sa.Select:
    report, me = people_t.alias("report"), people_t.alias("me")
    in_post_today = (
        sa.select(me.c.staff_id)
        .where(me.c.staff_id == _STAFF, _in_force(me), _in_post(me))
        .exists()
    )
    return (
        sa.select(report.c.staff_id)
        .where(
            report.c.supervisor_id == _STAFF,
            report.c.staff_id != _STAFF,
            _in_force(report),
            _in_post(report),
            in_post_today,
        )
        .limit(1)
    )


_CHAIN = chain_statement()
_IS_SUPERVISOR = _is_supervisor_statement()


def version_on(conn: sa.Connection, staff_id: str, day: date) -> Any | None:
    """The person's people row in force on `day`, or None."""
    return conn.execute(_VERSION_ON, {"staff": staff_id, "day": day}).first()


def in_post(conn: sa.Connection, staff_id: str, day: date) -> bool:
    version = version_on(conn, staff_id, day)
    return version is not None and (version.leave_date is None or version.leave_date > day)


def _chain(conn: sa.Connection, supervisor_id: str, day: date) -> dict[str, date]:
    """Everyone `supervisor_id` supervises on `day` (see the module's definition), each with
    the newest `valid_from` along their chain: since when this chain has been in force."""
    found: dict[str, date] = {}
    for staff_id, started in conn.execute(_CHAIN, {"staff": supervisor_id, "day": day}):
        started = read_date(started)
        if staff_id != supervisor_id:
            found[staff_id] = min(started, found.get(staff_id, started))
    return found


def supervised_staff(conn: sa.Connection, supervisor_id: str, day: date) -> list[str]:
    """The staff ids `supervisor_id` supervises on `day`, directly or down the chain, sorted.
    Opted-out people are included: views leave them out themselves."""
    return sorted(_chain(conn, supervisor_id, day))


def supervises(conn: sa.Connection, supervisor_id: str, staff_id: str, day: date) -> bool:
    """Whether `supervisor_id` supervises `staff_id` on `day`: walks up from the person, so it
    costs a few lookups however large the team."""
    if supervisor_id == staff_id:
        return False
    seen = {staff_id}
    current = staff_id
    for _ in range(_MAX_CHAIN):
        version = version_on(conn, current, day)
        if version is None or (version.leave_date is not None and version.leave_date <= day):
            return False
        boss = version.supervisor_id
        if not boss or boss in seen:
            return False
        if boss == supervisor_id:
            return in_post(conn, boss, day)
        seen.add(boss)
        current = boss
    return False


def is_supervisor(conn: sa.Connection, staff_id: str, day: date) -> bool:
    """Whether `staff_id` is in post and someone in post has them as their supervisor in
    force on `day`."""
    return conn.execute(_IS_SUPERVISOR, {"staff": staff_id, "day": day}).first() is not None


# --- figures for a set of people --------------------------------------------------------------


# As above, built once: the people are an expanding IN list, the moments parameters.
_IDS = sa.bindparam("ids", expanding=True)
_AS_OF = sa.bindparam("as_of", type_=exposures_t.c.at.type)
_START = sa.bindparam("start", type_=exposures_t.c.at.type)
_MIN_TIER = sa.bindparam("min_tier", type_=exposures_t.c.tier.type)
_OPTED_OUT = sa.select(opt_outs_t.c.staff_id).where(opt_outs_t.c.staff_id.in_(_IDS))
_VERSIONS = (
    sa.select(people_t)
    .where(people_t.c.staff_id.in_(_IDS), people_t.c.valid_from <= _DAY)
    .order_by(people_t.c.staff_id, people_t.c.valid_from)
)
_OPEN_ALERTS = (
    sa.select(alerts_t.c.staff_id, sa.func.count())
    .where(alerts_t.c.staff_id.in_(_IDS), alerts_t.c.status != "resolved")
    .group_by(alerts_t.c.staff_id)
)
_EXPOSURES_SINCE = sa.select(
    exposures_t.c.staff_id,
    exposures_t.c.at,
    exposures_t.c.category,
    exposures_t.c.tier,
    exposures_t.c.role,
    exposures_t.c.points,
).where(
    exposures_t.c.staff_id.in_(_IDS),
    exposures_t.c.at <= _AS_OF,
    exposures_t.c.at > _START,
    exposures_t.c.tier >= _MIN_TIER,
)


def _windows_statement() -> sa.Select:
    e, columns = exposures_t, []
    for window in PERSON_WINDOWS:
        inside = e.c.at > sa.bindparam(f"from_{window}", type_=e.c.at.type)
        columns.append(sa.func.sum(sa.case((inside, e.c.points), else_=0)))
        columns.append(sa.func.sum(sa.case((inside, 1), else_=0)))
    return (
        sa.select(e.c.staff_id, *columns)
        .where(e.c.staff_id.in_(_IDS), e.c.at <= _AS_OF, e.c.at > _START)
        .group_by(e.c.staff_id)
    )


_WINDOWS = _windows_statement()


def opted_out_among(conn: sa.Connection, staff_ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(sorted(set(staff_ids))):
        out.update(conn.execute(_OPTED_OUT, {"ids": chunk}).scalars())
    return out


def _versions(conn: sa.Connection, staff_ids: list[str], day: date) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(staff_ids):
        for row in conn.execute(_VERSIONS, {"ids": chunk, "day": day}):
            found[row.staff_id] = row  # ordered: the last one is in force
    return found


def window_points(value: Any) -> float:
    """A window's points as the pages show them (a sum read from the database may be None)."""
    return round(float(value or 0), POINTS_DECIMALS)


def windows_for(
    conn: sa.Connection, staff_ids: list[str], as_of: datetime
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Each person's points and exposure counts in the `exposure --json` windows at `as_of`,
    counted as engine.people.own_record counts them (as_of - N days < at <= as_of)."""
    oldest = as_of - timedelta(days=max(WINDOWS[w] for w in PERSON_WINDOWS))
    moments = {f"from_{w}": as_of - timedelta(days=WINDOWS[w]) for w in PERSON_WINDOWS}
    empty = {w: {"points": 0.0, "exposures": 0} for w in PERSON_WINDOWS}
    found = {s: {w: dict(v) for w, v in empty.items()} for s in staff_ids}
    for chunk in _chunks(staff_ids):
        params = {"ids": chunk, "as_of": as_of, "start": oldest, **moments}
        for staff_id, *sums in conn.execute(_WINDOWS, params):
            for index, window in enumerate(PERSON_WINDOWS):
                points, count = sums[2 * index], sums[2 * index + 1]
                found[staff_id][window] = {
                    "points": window_points(points),
                    "exposures": int(count or 0),
                }
    return found


def exposures_since(
    conn: sa.Connection,
    staff_ids: list[str],
    start: datetime,
    as_of: datetime,
    *,
    min_tier: int = 0,
    criteria: Criteria | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Each person's exposures with start < at <= as_of (and tier >= min_tier), newest first:
    category, label, tier, role and time only; no incident reference."""
    labels = {c.id: c.label for c in criteria.categories} if criteria else {}
    found: dict[str, list[dict[str, Any]]] = {s: [] for s in staff_ids}
    for chunk in _chunks(staff_ids):
        params = {"ids": chunk, "as_of": as_of, "start": start, "min_tier": min_tier}
        for row in conn.execute(_EXPOSURES_SINCE, params):
            found[row.staff_id].append(
                {
                    "at": read_datetime(row.at),
                    "category": row.category,
                    "label": labels.get(row.category),
                    "tier": row.tier,
                    "role": row.role,
                    "points": row.points,
                }
            )
    for items in found.values():
        items.sort(key=lambda item: item["at"], reverse=True)
        for item in items:
            item["at"] = _iso(item["at"])
    return found


def open_alert_counts(conn: sa.Connection, staff_ids: list[str]) -> dict[str, int]:
    """Unresolved (open or acknowledged) alerts per person."""
    counts = dict.fromkeys(staff_ids, 0)
    for chunk in _chunks(staff_ids):
        rows = conn.execute(_OPEN_ALERTS, {"ids": chunk})
        counts.update({staff_id: int(n) for staff_id, n in rows})
    return counts


# --- the views ---------------------------------------------------------------------------------


def team_view(
    engine: sa.Engine, supervisor_id: str, as_of: datetime, *, criteria: Criteria | None = None
) -> dict[str, Any]:
    """The people `supervisor_id` supervises at `as_of`, for the Team page and `GET /team`.

    `{"people": [{"staff_id", "display_name", "unit_id", "supervisor_id", "direct", "windows",
    "serious_7d", "open_alerts"}], "opted_out_count"}`, people by name; `direct` says the
    person reports to `supervisor_id` themselves rather than further down the chain.
    `windows` is the `exposure --json` shape; `serious_7d` lists the tier-2-or-higher
    exposures of the last 7 days (category, label, tier, role, at), so whoever allocates the
    next sudden death can see who has just had one; `open_alerts` counts unresolved alerts.
    Opted-out people appear only in `opted_out_count`.
    """
    day = local_date(as_of)
    with engine.connect() as conn:
        staff = supervised_staff(conn, supervisor_id, day)
        out = opted_out_among(conn, staff)
        visible = [s for s in staff if s not in out]
        versions = _versions(conn, visible, day)
        windows = windows_for(conn, visible, as_of)
        serious = exposures_since(
            conn,
            visible,
            as_of - timedelta(days=SERIOUS_DAYS),
            as_of,
            min_tier=SERIOUS_TIER,
            criteria=criteria,
        )
        alerts = open_alert_counts(conn, visible)
    people = [
        {
            "staff_id": staff_id,
            "display_name": versions[staff_id].display_name,
            "unit_id": versions[staff_id].unit_id,
            "supervisor_id": versions[staff_id].supervisor_id,
            "direct": versions[staff_id].supervisor_id == supervisor_id,
            "windows": windows[staff_id],
            "serious_7d": serious[staff_id],
            "open_alerts": alerts[staff_id],
        }
        for staff_id in visible
    ]
    people.sort(key=lambda p: (p["display_name"].casefold(), p["staff_id"]))
    return {"people": people, "opted_out_count": len(out)}


def handover(
    engine: sa.Engine,
    supervisor_id: str,
    as_of: datetime,
    days: int = HANDOVER_DAYS,
    *,
    criteria: Criteria | None = None,
    chain: dict[str, date] | None = None,
) -> list[dict[str, Any]]:
    """People who joined `supervisor_id`'s team in the last `days` days: supervised today and
    not on the team's day `days` ago (a new supervisor's whole team counts as joined).
    `chain` is today's chain when the caller has it (engine.people.team_page's), so it is not
    worked out twice.

    Each: staff_id, display_name, unit_id, `joined_on` (the date their current chain to this
    supervisor came into force), `windows`, and `recent`, their exposures of the last `days`
    days (category, label, tier, role, at), newest joiners first. Opted-out people are left
    out.
    """
    day = local_date(as_of)
    with engine.connect() as conn:
        now = chain if chain is not None else _chain(conn, supervisor_id, day)
        before = set(_chain(conn, supervisor_id, day - timedelta(days=days)))
        joined = sorted(s for s in now if s not in before)
        out = opted_out_among(conn, joined)
        joined = [s for s in joined if s not in out]
        versions = _versions(conn, joined, day)
        windows = windows_for(conn, joined, as_of)
        recent = exposures_since(
            conn, joined, as_of - timedelta(days=days), as_of, criteria=criteria
        )
    people = [
        {
            "staff_id": staff_id,
            "display_name": versions[staff_id].display_name,
            "unit_id": versions[staff_id].unit_id,
            "joined_on": now[staff_id].isoformat(),
            "windows": windows[staff_id],
            "recent": recent[staff_id],
        }
        for staff_id in joined
    ]
    people.sort(key=lambda p: (p["joined_on"], p["display_name"].casefold()), reverse=True)
    return people
