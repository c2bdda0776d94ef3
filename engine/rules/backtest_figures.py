"""Every step's snapshot figures for a backtest in one sweep over the history, not one
`engine.scoring.indicators.compute` per step.

The history a backtest needs (people's versions, exposures, cancelled rest days, sickness
spells, open investigations) is read once. The steps are then walked in order, and each
windowed figure is kept as a running count: at each step the events that entered the window
since the previous step are added and those that left it are taken away. The rules in
`engine.scoring.indicators`' docstring are followed exactly (windows of N x 24 hours for timestamps,
N calendar days for dates, distinct rest days, each sick day once), and points are added as
whole thousandths, so the figures equal `compute`'s at every step (the tests compare them,
person by person, on both databases).

Only the figures a pack tests are worked out; `supported` says whether a set of figures can
be (the backtest falls back to `compute` per step when not).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.scoring.criteria import POINTS_DECIMALS
from engine.scoring.indicators import PERSON_FIELDS, SHORT_NOTICE_DAYS, SICKNESS_TYPES, WINDOWS
from engine.sqltime import bind_date, bind_datetime, local_date, read_date, read_datetime

SCALE = 10**POINTS_DECIMALS  # points are added as whole thousandths: exact in any order
EXPOSURE_FIGURES = {
    **{f"trauma_points_{w}": ("points", d, 0) for w, d in WINDOWS.items()},
    **{f"exposures_{w}": ("count", d, 0) for w, d in WINDOWS.items()},
    "tier3_exposures_30d": ("count", 30, 3),
    "tier3_exposures_365d": ("count", 365, 3),
    "tier2plus_exposures_30d": ("count", 30, 2),
}
REST_DAY_FIGURES = {
    "cancelled_rest_days_30d": (30, False),
    "cancelled_rest_days_90d": (90, False),
    "cancelled_rest_days_365d": (365, False),
    "short_notice_cancellations_90d": (90, True),
}
SICKNESS_FIGURES = {"sickness_days_90d": 90, "sickness_days_365d": 365}
PERCENTILE = "trauma_points_365d_role_percentile"
SUPPORTED = {
    *PERSON_FIELDS,
    "service_years",
    *EXPOSURE_FIGURES,
    *REST_DAY_FIGURES,
    *SICKNESS_FIGURES,
    PERCENTILE,
    "open_investigations",
}


def supported(fields: Sequence[str]) -> bool:
    """Whether every one of `fields` can be worked out by the sweep."""
    return set(fields) <= SUPPORTED


class _Window:
    """A running per-person total of events inside a window ending at each step."""

    def __init__(self, events: list[tuple[Any, int, int]], width: Any) -> None:
        self.events = events  # (at, person, amount), sorted by time
        self.width = width  # how far back the window reaches (timedelta or days)
        self.entered = self.left = 0
        self.totals: dict[int, int] = defaultdict(int)

    def advance(self, end: Any, changed: set[int]) -> None:
        """Move the window to end at `end`: events at or before it are in, unless at or
        before `end - width` (a window excludes its start)."""
        events, start = self.events, end - self.width
        while self.entered < len(events) and events[self.entered][0] <= end:
            _, person, amount = events[self.entered]
            self.totals[person] += amount
            changed.add(person)
            self.entered += 1
        while self.left < self.entered and events[self.left][0] <= start:
            _, person, amount = events[self.left]
            self.totals[person] -= amount
            changed.add(person)
            self.left += 1


class DailyFigures:
    """The tested figures of every counted person at each of `moments` (sorted, UTC)."""

    def __init__(self, conn: sa.Connection, moments: Sequence[datetime], fields: Sequence[str]):
        if not supported(fields):
            raise ValueError(f"figures the sweep cannot work out: {set(fields) - SUPPORTED}")
        self.conn, self.moments, self.fields = conn, list(moments), tuple(fields)
        self.dialect = conn.dialect.name
        self.first, self.last = self.moments[0], self.moments[-1]
        self.first_day, self.last_day = local_date(self.first), local_date(self.last)
        self.index: dict[str, int] = {}
        self.staff: list[str] = []

    def person(self, staff_id: str) -> int:
        found = self.index.get(staff_id)
        if found is None:
            found = self.index[staff_id] = len(self.staff)
            self.staff.append(staff_id)
        return found

    # -- reading the history once --------------------------------------------------------

    def _rows(self, sql: str, **params: Any) -> list[sa.Row]:
        return list(self.conn.execute(sa.text(sql), params))

    def _t(self, value: datetime) -> Any:
        return bind_datetime(self.dialect, value)

    def _d(self, value: date) -> Any:
        return bind_date(self.dialect, value)

    def _versions(self) -> tuple[list[tuple[int, int, dict]], dict[int, int | None]]:
        """(valid_from ordinal, person, version) sorted, and each person's leave date
        (from the newest version, as `compute` reads it); opted-out people are left out."""
        opted = {row.staff_id for row in self._rows("SELECT staff_id FROM opt_outs")}
        rows = self._rows(
            "SELECT staff_id, valid_from, unit_id, supervisor_id, staff_type, role_group, "
            "rank_or_grade, service_start, leave_date FROM people"
        )
        versions, newest = [], {}
        for row in rows:
            if row.staff_id in opted:
                continue
            person = self.person(row.staff_id)
            valid = read_date(row.valid_from).toordinal()
            version = {name: getattr(row, name) for name in PERSON_FIELDS}
            version["service_start"] = read_date(row.service_start).toordinal()
            versions.append((valid, person, version))
            if person not in newest or newest[person][0] < valid:
                leave = read_date(row.leave_date)
                newest[person] = (valid, leave.toordinal() if leave else None)
        versions.sort(key=lambda item: (item[0], item[1]))
        return versions, {person: leave for person, (_, leave) in newest.items()}

    def _exposure_events(self, longest: int) -> list[tuple[datetime, int, int, int]]:
        rows = self._rows(
            "SELECT staff_id, at, points, tier FROM exposures WHERE at > :start AND at <= :t",
            start=self._t(self.first - timedelta(days=longest)),
            t=self._t(self.last),
        )
        events = []
        for row in rows:
            milli = round(float(row.points) * SCALE)
            if milli / SCALE != float(row.points):
                raise ValueError(f"points {row.points} are not whole thousandths")
            events.append((read_datetime(row.at), self.person(row.staff_id), milli, row.tier))
        events.sort(key=lambda item: item[0])
        return events

    def _rest_days(self, longest: int) -> tuple[list[int], list[int]]:
        """Distinct cancelled rest days, and those notified at short notice: (day, person)."""
        rows = self._rows(
            "SELECT staff_id, rest_day, notified_on FROM rest_day_cancellations "
            "WHERE status = 'cancelled' AND rest_day > :start AND rest_day <= :d",
            start=self._d(self.first_day - timedelta(days=longest)),
            d=self._d(self.last_day),
        )
        days, short = set(), set()
        for row in rows:
            rest_day = read_date(row.rest_day)
            key = (rest_day.toordinal(), self.person(row.staff_id))
            days.add(key)
            if (rest_day - read_date(row.notified_on)).days < SHORT_NOTICE_DAYS:
                short.add(key)
        return sorted(days), sorted(short)

    def _sick_days(self, longest: int) -> list[tuple[int, int]]:
        """(day, person) for each calendar day inside any sickness spell, each day once;
        an ongoing spell covers up to the last step's day."""
        earliest = self.first_day - timedelta(days=longest)
        rows = self._rows(
            "SELECT staff_id, start_date, end_date FROM absences "
            f"WHERE absence_type IN ({', '.join(repr(t) for t in SICKNESS_TYPES)}) "
            "AND start_date <= :d AND (end_date IS NULL OR end_date > :start)",
            d=self._d(self.last_day),
            start=self._d(earliest),
        )
        days = set()
        for row in rows:
            start = max(read_date(row.start_date), earliest + timedelta(days=1))
            end = min(read_date(row.end_date) or self.last_day, self.last_day)
            person = self.person(row.staff_id)
            days.update((d, person) for d in range(start.toordinal(), end.toordinal() + 1))
        return sorted(days)

    def _investigations(self) -> tuple[list[tuple], list[tuple]]:
        """(start, person) and (end, person) of each span in which a person was officer in
        charge of an open occurrence (spans of the same occurrence merged: counted once)."""
        rows = self._rows(
            "SELECT v.staff_id, v.occurrence_ref, v.assigned_at, v.unassigned_at, "
            "o.reported_at, o.closed_at FROM rms_involvements v "
            "JOIN rms_occurrences o ON o.occurrence_ref = v.occurrence_ref "
            "WHERE v.role = 'oic' AND v.assigned_at <= :t AND o.reported_at <= :t "
            "AND (v.unassigned_at IS NULL OR v.unassigned_at > :first) "
            "AND (o.closed_at > :first OR (o.closed_at IS NULL AND o.status = 'open'))",
            t=self._t(self.last),
            first=self._t(self.first),
        )
        spans: dict[tuple[int, str], list[tuple[datetime, datetime | None]]] = defaultdict(list)
        for row in rows:
            start = max(read_datetime(row.assigned_at), read_datetime(row.reported_at))
            ends = [read_datetime(v) for v in (row.unassigned_at, row.closed_at) if v is not None]
            end = min(ends) if ends else None
            if end is None or start < end:
                spans[(self.person(row.staff_id), row.occurrence_ref)].append((start, end))
        starts, ends = [], []
        for (person, _), pieces in spans.items():
            pieces.sort(key=lambda piece: piece[0])
            merged: list[list] = []
            for start, end in pieces:
                if merged and (merged[-1][1] is None or start <= merged[-1][1]):
                    if merged[-1][1] is not None and (end is None or end > merged[-1][1]):
                        merged[-1][1] = end
                else:
                    merged.append([start, end])
            for start, end in merged:
                starts.append((start, person, 1))
                if end is not None:
                    ends.append((end, person, 1))
        starts.sort(key=lambda item: item[0])
        ends.sort(key=lambda item: item[0])
        return starts, ends

    # -- the sweep ------------------------------------------------------------------------

    def steps(self) -> Iterator[tuple[datetime, dict[int, dict], set[int]]]:
        """For each moment: (moment, each counted person's figures, people whose figures may
        have changed since the previous moment). The dicts are reused between steps:
        copy what you keep."""
        wanted = set(self.fields)
        versions, leaves = self._versions()
        exposure_fields = {f: EXPOSURE_FIGURES[f] for f in wanted if f in EXPOSURE_FIGURES}
        if PERCENTILE in wanted:
            exposure_fields["trauma_points_365d"] = EXPOSURE_FIGURES["trauma_points_365d"]
        windows: dict[str, _Window] = {}
        if exposure_fields:
            longest = max(days for _, days, _ in exposure_fields.values())
            events = self._exposure_events(longest)
            for name, (kind, days, tier) in exposure_fields.items():
                chosen = [
                    (at, person, milli if kind == "points" else 1)
                    for at, person, milli, tiered in events
                    if tiered >= tier
                ]
                windows[name] = _Window(chosen, timedelta(days=days))
        day_windows: dict[str, _Window] = {}
        rest_fields = {f: REST_DAY_FIGURES[f] for f in wanted if f in REST_DAY_FIGURES}
        if rest_fields:
            all_days, short = self._rest_days(max(days for days, _ in rest_fields.values()))
            for name, (days, is_short) in rest_fields.items():
                chosen = [(d, person, 1) for d, person in (short if is_short else all_days)]
                day_windows[name] = _Window(chosen, days)
        sick_fields = {f: SICKNESS_FIGURES[f] for f in wanted if f in SICKNESS_FIGURES}
        if sick_fields:
            sick = [(d, person, 1) for d, person in self._sick_days(max(sick_fields.values()))]
            for name, days in sick_fields.items():
                day_windows[name] = _Window(sick, days)
        investigations = None
        if "open_investigations" in wanted:
            investigations = self._investigations()
            begun, ended = 0, 0
            open_now: dict[int, int] = defaultdict(int)

        current: dict[int, dict] = {}  # person -> the version in force
        figures: dict[int, dict] = {}
        next_version = 0
        service: dict[int, float] = {}
        percentile_of: dict[tuple[int, int], float] = {}
        for moment in self.moments:
            changed: set[int] = set()
            today = local_date(moment).toordinal()
            while next_version < len(versions) and versions[next_version][0] <= today:
                _, person, version = versions[next_version]
                current[person] = version
                changed.add(person)
                next_version += 1
            for window in windows.values():
                window.advance(moment, changed)
            for window in day_windows.values():
                window.advance(today, changed)
            if investigations is not None:
                starts, ends = investigations
                while begun < len(starts) and starts[begun][0] <= moment:
                    open_now[starts[begun][1]] += 1
                    changed.add(starts[begun][1])
                    begun += 1
                while ended < len(ends) and ends[ended][0] <= moment:
                    open_now[ends[ended][1]] -= 1
                    changed.add(ends[ended][1])
                    ended += 1
            counted = {
                person
                for person in current
                if leaves.get(person) is None or leaves[person] >= today
            }
            for person in list(figures):
                if person not in counted:
                    del figures[person]
            for person in counted:
                if person not in figures:
                    figures[person] = {}
                    changed.add(person)
            if "service_years" in wanted:
                # Everyone's service grows, but shows a change only every few days.
                for person, mine in figures.items():
                    days = today - current[person]["service_start"]
                    years = service.get(days)
                    if years is None:
                        years = service[days] = round(max(days / 365.25, 0.0), 2)
                    if mine.get("service_years") != years:
                        mine["service_years"] = years
                        changed.add(person)
            for person in changed:
                if person not in counted:
                    continue
                version = current[person]
                mine = figures[person]
                mine.update((name, version[name]) for name in PERSON_FIELDS)
                for name, window in windows.items():
                    total = window.totals.get(person, 0)
                    if name.startswith("trauma_points_"):
                        mine[name] = round(total / SCALE, POINTS_DECIMALS)
                    else:
                        mine[name] = total
                for name, window in day_windows.items():
                    mine[name] = window.totals.get(person, 0)
                if investigations is not None:
                    mine["open_investigations"] = open_now.get(person, 0)
            if PERCENTILE in wanted:
                self._percentiles(figures, percentile_of, changed)
            yield moment, figures, changed

    @staticmethod
    def _percentiles(
        figures: dict[int, dict], table: dict[tuple[int, int], float], changed: set[int]
    ) -> None:
        groups: dict[str, list[float]] = defaultdict(list)
        for mine in figures.values():
            groups[mine["role_group"]].append(mine["trauma_points_365d"])
        for points in groups.values():
            points.sort()
        for person, mine in figures.items():
            points = groups[mine["role_group"]]
            value = 0.0
            if len(points) >= 2:
                below = bisect_left(points, mine["trauma_points_365d"])
                key = (below, len(points))
                value = table.get(key)
                if value is None:
                    value = table[key] = round(100 * below / (len(points) - 1), 1)
            if mine.get(PERCENTILE) != value:
                mine[PERCENTILE] = value
                changed.add(person)
