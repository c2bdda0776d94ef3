"""Indicators: each person's figures at an evaluation time (CONTRACT section 2, snapshots).

How each figure counts, precisely:
- Windows of N days end at the evaluation time T and exclude their start: a timestamp t
  counts when T - N x 24h < t <= T. `5y` is 1,826 days (5 x 365.25, rounded down).
- trauma_points_* sum the exposures' points, exposures_* count them (the unweighted count
  kept beside the points), tier3_exposures_* count those of tier 3 or above, and
  tier2plus_exposures_30d those of tier 2 or above (the cluster rule's figure).
- Date-based feeds (rest days, absences) use the force's calendar date D of T (Europe/London):
  a date d counts in an N-day window when D - N < d <= D, so a rest day counts from its first
  moment and one after D does not count yet.
- cancelled_rest_days_*: distinct rest days with status `cancelled` (reinstated ones never
  count; the feed has no reinstatement date, so an earlier moment's figures also leave out a
  rest day reinstated since); short_notice_cancellations_90d: those of the last 90 days
  notified fewer than 15 days before the rest day (the England and Wales rule).
- sickness_*: absences of type `sickness` or `injury_on_duty`. Days are calendar days of the
  spells inside the window (overlapping spells count a day once; an ongoing spell counts up to
  D); spells are those with a day in the last 365 days; the Bradford factor is spells squared
  times days, both over 365 days. absent_now: any absence, of any type, covering D.
- open_investigations: occurrences open at T (reported by T and not closed by T) where the
  person was officer in charge at T. deployments_30d: distinct incidents the person was
  deployed to (any role) with the deployment's time (arrived_at, else the incident's
  created_at) in the last 30 days.
- trauma_points_365d_role_percentile: SQL's PERCENT_RANK x 100 within the role group at T:
  the share of the *other* people in the group with fewer points, 0 to 100 (the most exposed
  alone at the top gets 100; everyone tied, or a group of one, gets 0), one decimal place.
- service_years: (D - service_start) / 365.25 days, two decimal places.
- Who is counted: people with a version valid at D (the newest `valid_from` on or before D
  gives team, supervisor and role group then), not past the leave date on their newest
  version, and not opted out.
Points are summed and rounded to 3 decimal places, so the same exposures give the same
figures whatever order a database adds them in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.scoring.criteria import POINTS_DECIMALS
from engine.sqltime import bind_date, bind_datetime, days_before, local_date, read_date

WINDOWS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "5y": 1826}
SHORT_NOTICE_DAYS = 15
SICKNESS_TYPES = ("sickness", "injury_on_duty")
POPULATION = "tt_population"

PERSON_FIELDS = ("unit_id", "supervisor_id", "staff_type", "role_group", "rank_or_grade")
FIGURES = (
    "service_years",
    *(f"trauma_points_{w}" for w in WINDOWS),
    *(f"exposures_{w}" for w in WINDOWS),
    "tier3_exposures_30d",
    "tier3_exposures_365d",
    "tier2plus_exposures_30d",
    "trauma_points_365d_role_percentile",
    "cancelled_rest_days_30d",
    "cancelled_rest_days_90d",
    "cancelled_rest_days_365d",
    "short_notice_cancellations_90d",
    "sickness_days_90d",
    "sickness_days_365d",
    "sickness_spells_365d",
    "bradford_factor_365d",
    "absent_now",
    "open_investigations",
    "deployments_30d",
)
SNAPSHOT_FIELDS = PERSON_FIELDS + FIGURES


def in_window(at: datetime, as_of: datetime, days: int) -> bool:
    """The window rule for timestamps, for code that counts in Python."""
    return days_before(as_of, days) < at <= as_of


@dataclass
class Context:
    conn: sa.Connection
    as_of: datetime
    day: date

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    @property
    def by_staff(self) -> str:
        # `+` keeps SQLite from walking the primary key index (a row lookup per exposure)
        # just to group in order: a scan and a sort are several times faster.
        return "+e.staff_id" if self.dialect == "sqlite" else "e.staff_id"

    @property
    def join(self) -> str:
        # SQLite has no statistics on these tables: CROSS JOIN tells it the order to use.
        return "CROSS JOIN" if self.dialect == "sqlite" else "JOIN"

    def t(self, days: int = 0) -> Any:
        return bind_datetime(self.dialect, days_before(self.as_of, days))

    def d(self, days: int = 0) -> Any:
        return bind_date(self.dialect, self.day - timedelta(days=days))

    def rows(self, sql: str, **params: Any) -> list[sa.Row]:
        return list(self.conn.execute(sa.text(sql), params))


def compute(conn: sa.Connection, as_of: datetime) -> dict[str, dict[str, Any]]:
    """Every counted person's snapshot fields at `as_of`, by staff id."""
    ctx = Context(conn, as_of, local_date(as_of))
    people = _population(ctx)
    figures = {staff: _blank(person, ctx.day) for staff, person in people.items()}
    _exposures(ctx, figures)
    _rest_days(ctx, figures)
    _absences(ctx, figures)
    _investigations(ctx, figures)
    _deployments(ctx, figures)
    # On an error the transaction's rollback takes the temporary table with it.
    conn.execute(sa.text(f"DROP TABLE {POPULATION}"))
    _percentiles(figures)
    return figures


def _population(ctx: Context) -> dict[str, Any]:
    """The counted people at D, each with the version of them in force then. They are also
    left in the temporary table POPULATION for the queries that drive from it."""
    ctx.conn.execute(sa.text(f"DROP TABLE IF EXISTS {POPULATION}"))
    ctx.conn.execute(
        sa.text(
            f"CREATE TEMPORARY TABLE {POPULATION} "
            "(staff_id VARCHAR PRIMARY KEY, valid_from DATE NOT NULL)"
        )
    )
    # The version in force on D says who the person was; HR records a leave on the current
    # record, so the newest version's leave date says whether they had left by D.
    ctx.conn.execute(
        sa.text(
            f"INSERT INTO {POPULATION} (staff_id, valid_from) "
            "SELECT v.staff_id, v.valid_from FROM "
            "(SELECT staff_id, MAX(valid_from) AS valid_from FROM people "
            " WHERE valid_from <= :d GROUP BY staff_id) v "
            "JOIN (SELECT staff_id, MAX(valid_from) AS newest FROM people GROUP BY staff_id) n "
            "ON n.staff_id = v.staff_id "
            "JOIN people last ON last.staff_id = n.staff_id AND last.valid_from = n.newest "
            "WHERE (last.leave_date IS NULL OR last.leave_date >= :d) "
            "AND NOT EXISTS (SELECT 1 FROM opt_outs x WHERE x.staff_id = v.staff_id)"
        ),
        {"d": ctx.d()},
    )
    rows = ctx.rows(
        "SELECT p.staff_id, p.unit_id, p.supervisor_id, p.staff_type, p.role_group, "
        f"p.rank_or_grade, p.service_start FROM {POPULATION} w "
        f"{ctx.join} people p ON p.staff_id = w.staff_id AND p.valid_from = w.valid_from"
    )
    return {row.staff_id: row for row in rows}


def _blank(person: Any, day: date) -> dict[str, Any]:
    service = (day - read_date(person.service_start)).days / 365.25
    figures: dict[str, Any] = dict.fromkeys(FIGURES, 0)
    figures.update(
        unit_id=person.unit_id,
        supervisor_id=person.supervisor_id,
        staff_type=person.staff_type,
        role_group=person.role_group,
        rank_or_grade=person.rank_or_grade,
        service_years=round(max(service, 0.0), 2),
        trauma_points_365d_role_percentile=0.0,
        absent_now=False,
    )
    for window in WINDOWS:
        figures[f"trauma_points_{window}"] = 0.0
    return figures


def _exposures(ctx: Context, figures: dict[str, dict[str, Any]]) -> None:
    # Two passes: a plain sum over the 5 years, and the per-window sums over the last 365
    # days only (CASE per row is what costs; most exposures are older than a year).
    longest = max(WINDOWS.values())
    rows = ctx.rows(
        "SELECT e.staff_id, SUM(e.points) AS points, COUNT(*) AS n FROM exposures e "
        f"WHERE e.at > :start AND e.at <= :t GROUP BY {ctx.by_staff}",
        start=ctx.t(longest),
        t=ctx.t(),
    )
    for row in rows:
        person = figures.get(row.staff_id)
        if person is not None:
            person["trauma_points_5y"] = round(float(row.points), POINTS_DECIMALS)
            person["exposures_5y"] = int(row.n)
    sums = []
    params: dict[str, Any] = {"t": ctx.t()}
    shorter = {w: d for w, d in WINDOWS.items() if d < 365}
    for window, days in shorter.items():
        params[f"t{window}"] = ctx.t(days)
        sums.append(f"SUM(CASE WHEN at > :t{window} THEN points ELSE 0 END) AS p_{window}")
        sums.append(f"SUM(CASE WHEN at > :t{window} THEN 1 ELSE 0 END) AS n_{window}")
    rows = ctx.rows(
        f"SELECT e.staff_id, {', '.join(sums)}, SUM(points) AS p_365d, COUNT(*) AS n_365d, "
        "SUM(CASE WHEN at > :t30d AND tier >= 3 THEN 1 ELSE 0 END) AS top_30d, "
        "SUM(CASE WHEN at > :t30d AND tier >= 2 THEN 1 ELSE 0 END) AS serious_30d, "
        "SUM(CASE WHEN tier >= 3 THEN 1 ELSE 0 END) AS top_365d "
        f"FROM exposures e WHERE e.at > :start AND e.at <= :t GROUP BY {ctx.by_staff}",
        start=ctx.t(365),
        **params,
    )
    for row in rows:
        person = figures.get(row.staff_id)
        if person is None:
            continue
        for window in (*shorter, "365d"):
            points = float(getattr(row, f"p_{window}"))
            person[f"trauma_points_{window}"] = round(points, POINTS_DECIMALS)
            person[f"exposures_{window}"] = int(getattr(row, f"n_{window}"))
        person["tier3_exposures_30d"] = int(row.top_30d)
        person["tier3_exposures_365d"] = int(row.top_365d)
        person["tier2plus_exposures_30d"] = int(row.serious_30d)


def _rest_days(ctx: Context, figures: dict[str, dict[str, Any]]) -> None:
    # A rest day cancelled twice (two records) is one lost rest day, short notice if any of
    # its notices came late: hence COUNT(DISTINCT rest_day).
    notice = (
        "julianday(r.rest_day) - julianday(r.notified_on)"
        if ctx.dialect == "sqlite"
        else "r.rest_day - r.notified_on"
    )
    rows = ctx.rows(
        "SELECT r.staff_id, "
        "COUNT(DISTINCT CASE WHEN r.rest_day > :d30 THEN r.rest_day END) AS n30, "
        "COUNT(DISTINCT CASE WHEN r.rest_day > :d90 THEN r.rest_day END) AS n90, "
        "COUNT(DISTINCT r.rest_day) AS n365, "
        "COUNT(DISTINCT CASE WHEN r.rest_day > :d90 "
        f"AND {notice} < {SHORT_NOTICE_DAYS} THEN r.rest_day END) AS short "
        "FROM rest_day_cancellations r "
        "WHERE r.status = 'cancelled' AND r.rest_day > :d365 AND r.rest_day <= :d "
        "GROUP BY r.staff_id",
        d30=ctx.d(30),
        d90=ctx.d(90),
        d365=ctx.d(365),
        d=ctx.d(),
    )
    for row in rows:
        person = figures.get(row.staff_id)
        if person is not None:
            person["cancelled_rest_days_30d"] = int(row.n30)
            person["cancelled_rest_days_90d"] = int(row.n90)
            person["cancelled_rest_days_365d"] = int(row.n365)
            person["short_notice_cancellations_90d"] = int(row.short)


def _absences(ctx: Context, figures: dict[str, dict[str, Any]]) -> None:
    rows = ctx.rows(
        "SELECT a.staff_id, a.start_date, a.end_date, a.absence_type FROM absences a "
        "WHERE a.start_date <= :d AND (a.end_date IS NULL OR a.end_date > :start)",
        d=ctx.d(),
        start=ctx.d(365),
    )
    spells: dict[str, list[tuple[date, date]]] = defaultdict(list)
    for row in rows:
        if row.staff_id not in figures:
            continue
        start = read_date(row.start_date)
        end = min(read_date(row.end_date) or ctx.day, ctx.day)  # ongoing: up to D
        if end < start:
            continue
        if start <= ctx.day <= end:
            figures[row.staff_id]["absent_now"] = True
        if row.absence_type in SICKNESS_TYPES:
            spells[row.staff_id].append((start, end))
    for staff, person_spells in spells.items():
        person = figures[staff]
        for window in (90, 365):
            first = ctx.day - timedelta(days=window - 1)  # the window's first day
            person[f"sickness_days_{window}d"] = _days_covered(person_spells, first, ctx.day)
        person["sickness_spells_365d"] = len(person_spells)
        person["bradford_factor_365d"] = (
            person["sickness_spells_365d"] ** 2 * person["sickness_days_365d"]
        )


def _days_covered(spells: list[tuple[date, date]], first: date, last: date) -> int:
    """Calendar days from `first` to `last` inside any spell, each day once."""
    covered = 0
    reach = first - timedelta(days=1)  # the last day already counted
    for start, end in sorted(spells):
        start, end = max(start, reach + timedelta(days=1)), min(end, last)
        if end >= start:
            covered += (end - start).days + 1
            reach = end
    return covered


def _investigations(ctx: Context, figures: dict[str, dict[str, Any]]) -> None:
    # Two branches rather than an OR, so both databases use the closed_at index.
    open_then = (
        "SELECT o.occurrence_ref FROM rms_occurrences o WHERE o.closed_at > :t "
        "AND o.reported_at <= :t "
        "UNION ALL SELECT o.occurrence_ref FROM rms_occurrences o "
        "WHERE o.closed_at IS NULL AND o.status = 'open' AND o.reported_at <= :t"
    )
    rows = ctx.rows(
        "SELECT v.staff_id, COUNT(DISTINCT v.occurrence_ref) AS n "
        f"FROM ({open_then}) o {ctx.join} rms_involvements v "
        "ON v.occurrence_ref = o.occurrence_ref "
        f"{ctx.join} {POPULATION} w ON w.staff_id = v.staff_id "
        "WHERE v.role = 'oic' AND v.assigned_at <= :t "
        "AND (v.unassigned_at IS NULL OR v.unassigned_at > :t) GROUP BY v.staff_id",
        t=ctx.t(),
    )
    for row in rows:
        figures[row.staff_id]["open_investigations"] = int(row.n)


def _deployments(ctx: Context, figures: dict[str, dict[str, Any]]) -> None:
    # The window's deployments by time (the arrived_at index), then those with no arrival
    # time through their incident's creation time (the created_at index), as exposures do.
    window = (
        "SELECT d.staff_id, d.incident_urn FROM cc_deployments d "
        "WHERE d.arrived_at > :start AND d.arrived_at <= :t "
        "UNION ALL SELECT d.staff_id, d.incident_urn FROM cc_incidents i "
        f"{ctx.join} cc_deployments d ON d.incident_urn = i.incident_urn "
        "WHERE i.created_at > :start AND i.created_at <= :t AND d.arrived_at IS NULL"
    )
    rows = ctx.rows(
        "SELECT x.staff_id, COUNT(DISTINCT x.incident_urn) AS n "
        f"FROM ({window}) x {ctx.join} {POPULATION} w ON w.staff_id = x.staff_id "
        "GROUP BY x.staff_id",
        start=ctx.t(30),
        t=ctx.t(),
    )
    for row in rows:
        figures[row.staff_id]["deployments_30d"] = int(row.n)


def _percentiles(figures: dict[str, dict[str, Any]]) -> None:
    groups: dict[str, list[float]] = defaultdict(list)
    for person in figures.values():
        groups[person["role_group"]].append(person["trauma_points_365d"])
    for points in groups.values():
        points.sort()
    for person in figures.values():
        points = groups[person["role_group"]]
        if len(points) < 2:
            continue
        below = bisect_left(points, person["trauma_points_365d"])
        person["trauma_points_365d_role_percentile"] = round(100 * below / (len(points) - 1), 1)
