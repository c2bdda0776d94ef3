"""The senior leaders' overview: figures by area, department and team, with disclosure control.

Who is counted: everyone in post today (their people version in force on today's London
date, not past the leave date on their newest version) who has not opted out; each person
counts in the unit of the asked level at or above their own unit today, and in the force
total. Opted-out people are in no figure: not in the people count, and they have no
exposures or alerts (engine.people.opt_out deletes them).

Figures per unit: `people`; `exposures_365d`, the exposures of the last 365 days, and
`points_365d_mean`, the mean 12-month points per person, both from each person's current
snapshot (the newest evaluation; someone without one yet counts as 0); `open_alerts`, the
unresolved alerts. The trend gives, for each of the 12 calendar months up to and including
this one (London), the exposures and the alerts opened per person of the unit's people
today. A unit the disclosure control suppresses (engine.oversight.disclosure) shows no
figure at all, only `suppressed: true`; the suppression is the same for the table, the trend
and the CSV, and is worked out for all levels together.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa

from engine.oversight.disclosure import FORCE, Hierarchy, UnitNode, suppress
from engine.sqltime import LONDON, bind_date, bind_datetime, read_datetime

LEVELS = ("team", "department", "area")
MONTHS = 12


class AggregateError(ValueError):
    """A request the overview can't answer (a bad `by`), naming the field."""


@dataclass
class Figures:
    people: int = 0
    exposures_365d: int = 0
    points_365d: float = 0.0
    open_alerts: int = 0
    months_exposures: list[int] = field(default_factory=lambda: [0] * MONTHS)
    months_alerts: list[int] = field(default_factory=lambda: [0] * MONTHS)


@dataclass
class Overview:
    """Every level's cells at once (the suppression spans them), and what they were built on."""

    day: date
    months: list[str]  # YYYY-MM, oldest first
    snapshot_as_of: datetime | None
    hierarchy: Hierarchy
    figures: dict[str, Figures]
    _made: dict[Any, Any] = field(default_factory=dict, repr=False)

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()`, worked out once per overview (a rendering reused with the figures)."""
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def units(self, by: str) -> list[str]:
        """The unit ids of one level, by name."""
        level = check_level(by)
        cells = self.hierarchy.cells
        return sorted(
            (k for k, c in cells.items() if c.level == level), key=lambda k: (cells[k].name, k)
        )

    def row(self, unit_id: str) -> dict[str, Any]:
        """One cell as CONTRACT section 5's row: null figures when suppressed."""
        cell, figures = self.hierarchy.cells[unit_id], self.figures[unit_id]
        shown = not cell.suppressed
        mean = round(figures.points_365d / figures.people, 2) if figures.people else 0.0
        return {
            "unit_id": None if unit_id == FORCE else unit_id,
            "name": cell.name,
            "people": figures.people if shown else None,
            "exposures_365d": figures.exposures_365d if shown else None,
            "points_365d_mean": mean if shown else None,
            "open_alerts": figures.open_alerts if shown else None,
            "suppressed": cell.suppressed,
        }

    def rows(self, by: str) -> list[dict[str, Any]]:
        """`GET /api/v1/aggregates?by=...`: one row per unit of that level."""
        return [self.row(unit_id) for unit_id in self.units(by)]

    def total(self) -> dict[str, Any]:
        return self.row(FORCE)

    def trend_row(self, unit_id: str) -> dict[str, Any]:
        cell, figures = self.hierarchy.cells[unit_id], self.figures[unit_id]
        months = []
        for index, month in enumerate(self.months):
            if cell.suppressed or not figures.people:
                exposures = alerts = None
            else:
                exposures = round(figures.months_exposures[index] / figures.people, 3)
                alerts = round(figures.months_alerts[index] / figures.people, 3)
            months.append(
                {"month": month, "exposures_per_person": exposures, "alerts_per_person": alerts}
            )
        return {
            "unit_id": None if unit_id == FORCE else unit_id,
            "name": cell.name,
            "people": None if cell.suppressed else figures.people,
            "suppressed": cell.suppressed,
            "months": months,
        }

    def trend(self, by: str) -> dict[str, Any]:
        """The heatmap: rates per person by unit and month, the force total last."""
        return {
            "months": list(self.months),
            "units": [self.trend_row(unit_id) for unit_id in self.units(by)],
            "total": self.trend_row(FORCE),
        }

    def to_json(self, by: str) -> dict[str, Any]:
        """What the overview page shows: the table, the force total and how current it is."""
        return {
            "by": check_level(by),
            "day": self.day.isoformat(),
            "snapshot_as_of": self.snapshot_as_of.isoformat() if self.snapshot_as_of else None,
            "rows": self.rows(by),
            "total": self.total(),
            "problems": list(self.hierarchy.problems),
        }


def check_level(by: str | None) -> str:
    if by not in LEVELS:
        raise AggregateError(f"by: must be one of {', '.join(LEVELS)}, not {by!r}")
    return by


def month_starts(day: date, count: int = MONTHS) -> list[date]:
    """The first days of the `count` calendar months up to and including `day`'s, oldest first."""
    starts = []
    year, month = day.year, day.month
    for _ in range(count):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LONDON).astimezone(UTC)


# What the overview reads changes only through these: ingest (units, people), evaluations
# (snapshots), alert events (opened, acknowledged, resolved), opt-outs and opt-ins. Retention
# removes only what the figures never count (resolved alerts and exposures past the history).
FINGERPRINT = (
    "SELECT (SELECT MAX(id) FROM ingest_runs), (SELECT MAX(id) FROM evaluations), "
    "(SELECT MAX(id) FROM alerts), (SELECT MAX(id) FROM alert_events), "
    "(SELECT MAX(id) FROM opt_out_events)"
)
CACHE_SIZE = 8
_cache: dict[tuple, Overview] = {}
_cache_lock = threading.Lock()


def current_overview(
    engine: sa.Engine, now: datetime | None = None, *, trend: bool = True
) -> Overview:
    """`overview`, reused while nothing it reads has changed (FINGERPRINT) on the same London
    day: every leader asks for the same figures, and they are worked out once per change.

    Each process keeps its own copies, always checked against the database, so several
    workers answer alike.
    """
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        stamp = tuple(conn.execute(sa.text(FINGERPRINT)).one())
    key = (str(engine.url), now.astimezone(LONDON).date(), trend, stamp)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    found = overview(engine, now, trend=trend)
    with _cache_lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = found
    return found


def overview(engine: sa.Engine, now: datetime | None = None, *, trend: bool = True) -> Overview:
    """Every level's figures and suppression at `now` (default: the present moment).

    `trend=False` leaves the monthly figures at zero (the table does not need them).
    """
    now = now or datetime.now(UTC)
    day = now.astimezone(LONDON).date()
    starts = month_starts(day)
    with engine.connect() as conn:
        dialect = conn.dialect.name
        units = [
            UnitNode(r.unit_id, r.parent_id, r.level, r.name)
            for r in conn.execute(sa.text("SELECT unit_id, parent_id, level, name FROM units"))
        ]
        today = {"d": bind_date(dialect, day)}
        homes = conn.execute(sa.text(HOME_FIGURES), today).all()
        as_of = conn.execute(sa.text("SELECT MAX(as_of) FROM snapshots WHERE is_current"))
        snapshot_as_of = read_datetime(as_of.scalar())
        months: dict[str, dict[str, list[int]]] = {"exposures": {}, "alerts": {}}
        if trend:
            bounds = [bind_datetime(dialect, _london_midnight(s)) for s in starts]
            months["exposures"] = _monthly(conn, "exposures", "at", bounds, today)
            months["alerts"] = _monthly(conn, "alerts", "opened_at", bounds, today)
    hierarchy = Hierarchy.build(units)
    figures = {key: Figures() for key in hierarchy.cells}
    # One row per home unit (the unit people are in today), added to every cell it is in.
    for home in homes:
        monthly = (months["exposures"].get(home.unit_id), months["alerts"].get(home.unit_id))
        for key in hierarchy.cells_of(home.unit_id):
            cell = figures[key]
            cell.people += int(home.people)
            cell.exposures_365d += int(home.exposures)
            cell.points_365d += float(home.points)
            cell.open_alerts += int(home.open_alerts)
            for counts, target in zip(
                monthly, (cell.months_exposures, cell.months_alerts), strict=True
            ):
                for index, n in enumerate(counts or ()):
                    target[index] += n
    for key, cell in hierarchy.cells.items():
        cell.people = figures[key].people
    suppress(hierarchy)
    labels = [s.strftime("%Y-%m") for s in starts]
    return Overview(day, labels, snapshot_as_of, hierarchy, figures)


# Who is counted today (:d), and the unit each is in: the version in force on the day, not
# past the leave date on the newest version, not opted out.
PEOPLE_TODAY = (
    "(SELECT p.staff_id, p.unit_id FROM people p "
    "JOIN (SELECT staff_id, MAX(valid_from) AS valid_from FROM people "
    "      WHERE valid_from <= :d GROUP BY staff_id) v "
    "  ON v.staff_id = p.staff_id AND v.valid_from = p.valid_from "
    "JOIN (SELECT staff_id, MAX(valid_from) AS newest FROM people GROUP BY staff_id) n "
    "  ON n.staff_id = p.staff_id "
    "JOIN people last ON last.staff_id = n.staff_id AND last.valid_from = n.newest "
    "WHERE (last.leave_date IS NULL OR last.leave_date >= :d) "
    "AND NOT EXISTS (SELECT 1 FROM opt_outs x WHERE x.staff_id = p.staff_id))"
)
# Per home unit: people, their current snapshots' 12-month exposures and points, and their
# unresolved alerts. Summed in the database: a few hundred rows come back, not thousands. The
# alerts are counted per person through their index: a join would leave PostgreSQL, which
# can't estimate PEOPLE_TODAY's size, comparing every person with every alert.
HOME_FIGURES = (
    "SELECT h.unit_id, COUNT(*) AS people, SUM(h.exposures) AS exposures, "
    "SUM(h.points) AS points, SUM(h.open_alerts) AS open_alerts FROM ("
    "SELECT t.unit_id, COALESCE(s.exposures_365d, 0) AS exposures, "
    "COALESCE(s.trauma_points_365d, 0) AS points, "
    "(SELECT COUNT(*) FROM alerts a WHERE a.staff_id = t.staff_id "
    " AND a.status <> 'resolved') AS open_alerts "
    f"FROM {PEOPLE_TODAY} t "
    "LEFT JOIN snapshots s ON s.staff_id = t.staff_id AND s.is_current) h "
    "GROUP BY h.unit_id"
)


def _monthly(
    conn: sa.Connection, table: str, column: str, bounds: list[Any], today: dict[str, Any]
) -> dict[str, list[int]]:
    """Per home unit, how many rows of `table` of today's people fall in each month
    (`bounds`: each month's first moment, UTC); the last month runs on to now."""
    params = {f"b{i}": bound for i, bound in enumerate(bounds)} | today
    cases = []
    for i in range(len(bounds)):
        upper = f" AND x.{column} < :b{i + 1}" if i + 1 < len(bounds) else ""
        cases.append(f"SUM(CASE WHEN x.{column} >= :b{i}{upper} THEN 1 ELSE 0 END) AS m{i}")
    rows = conn.execute(
        sa.text(
            f"SELECT t.unit_id, {', '.join(cases)} FROM {table} x "
            f"JOIN {PEOPLE_TODAY} t ON t.staff_id = x.staff_id "
            f"WHERE x.{column} >= :b0 GROUP BY t.unit_id"
        ),
        params,
    )
    return {r.unit_id: [int(r[i + 1]) for i in range(len(bounds))] for r in rows}


# --- CSV -------------------------------------------------------------------------------------

TABLE_COLUMNS = (
    "unit_id",
    "name",
    "people",
    "exposures_365d",
    "points_365d_mean",
    "open_alerts",
    "suppressed",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A unit name from the feed must not run as a formula in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def table_csv(view: Overview, by: str) -> str:
    """The table exactly as shown, suppression included, with the force total last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TABLE_COLUMNS)
    for row in [*view.rows(by), view.total()]:
        writer.writerow([_cell(row[column]) for column in TABLE_COLUMNS])
    return out.getvalue()


def trend_csv(view: Overview, by: str) -> str:
    """The heatmap exactly as shown: one row per unit and month."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ("unit_id", "name", "month", "exposures_per_person", "alerts_per_person", "suppressed")
    )
    trend = view.trend(by)
    for row in [*trend["units"], trend["total"]]:
        for month in row["months"]:
            writer.writerow(
                [
                    _cell(row["unit_id"]),
                    _cell(row["name"]),
                    month["month"],
                    _cell(month["exposures_per_person"]),
                    _cell(month["alerts_per_person"]),
                    _cell(row["suppressed"]),
                ]
            )
    return out.getvalue()
