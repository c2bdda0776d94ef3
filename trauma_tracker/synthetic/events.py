"""Command-and-control incident logs and who was deployed to them, one calendar year at a time.

Each incident gets a closing code from the force's demand mix, a grade, qualifiers, and,
unless it was resolved without attendance, a crew drawn from the pools on the day: the first
officer on scene, others attending, sometimes a sergeant; a call handler took the call and a
dispatcher sent the crew. Incidents that become crimes are handed on as crime seeds.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from math import exp
from typing import NamedTuple

from trauma_tracker.synthetic import rates
from trauma_tracker.synthetic.clock import DAY, Period, cumulative
from trauma_tracker.synthetic.force import Force
from trauma_tracker.synthetic.pools import Pools
from trauma_tracker.synthetic.staffing import Person

GRADES = ("I", "P", "S", "R")
# Rows handed to the sink at a time: big enough for writerows to pay, small enough for memory.
CHUNK = 20_000
LOCAL_POOLS = frozenset({"response", "neighbourhood"})
# Share of attended incidents whose dispatcher is recorded on the log (assumption: the rest
# were self-deployed or sent by radio without a log entry).
DISPATCHED_SHARE = 0.9


class Kind(NamedTuple):
    """An incident type compiled for the hot loop."""

    code: str
    grade_cum: list[float]
    opened: list[tuple[str, float]]  # (opening code, cumulative chance)
    qualifiers: tuple[tuple[str, float], ...]
    scene_seconds: float
    crime: float
    hocr: list[str]
    hocr_cum: list[float]
    officers: int
    supervisor: float
    lead: str
    lead_share: float


class CrimeSeed(NamedTuple):
    reported: int  # second of the period
    hocr: str
    incident_code: str | None
    child: bool
    urn: str
    area: int
    crew: tuple[Person, ...]  # first on scene first


def compile_kinds() -> list[Kind]:
    kinds = []
    for code, t in rates.INCIDENT_TYPES.items():
        opened, acc = [], 0.0
        for alt, chance in t.opened_as:
            acc += chance
            opened.append((alt, acc))
        hocr = rates.CRIMES_FROM_INCIDENT.get(code, ())
        kinds.append(
            Kind(
                code,
                cumulative(t.grades),
                opened,
                rates.QUALIFIERS.get(code, ()),
                t.on_scene_minutes * 60.0,
                t.crime if hocr else 0.0,
                [h for h, _ in hocr],
                cumulative([w for _, w in hocr]),
                t.officers,
                t.supervisor,
                t.lead,
                t.lead_share,
            )
        )
    return kinds


def linked_crimes_per_incident() -> float:
    """Expected crimes recorded from one incident log, from the rates."""
    return sum(
        t.share * t.crime
        for code, t in rates.INCIDENT_TYPES.items()
        if code in rates.CRIMES_FROM_INCIDENT
    )


def _draw(rng: random.Random, table: tuple[tuple[int, float], ...]) -> int:
    r, acc = rng.random(), 0.0
    for value, weight in table:
        acc += weight
        if r < acc:
            return value
    return table[-1][0]


class Incidents:
    def __init__(self, force: Force, period: Period, pools: Pools, officers: int) -> None:
        self.period = period
        self.pools = pools
        self.officers = officers
        self.kinds = compile_kinds()
        self.kind_cum = cumulative([rates.INCIDENT_TYPES[k.code].share for k in self.kinds])
        self.areas = force.areas
        self.area_cum = cumulative([share for _, _, share in force.areas])

    def expected(self, days: int) -> int:
        return round(rates.INCIDENTS_PER_OFFICER_YEAR * self.officers * days / 365.25)

    def _times(self, rng: random.Random, first: int, after: int, count: int) -> list[int]:
        days = range(first, after)
        weekday = [rates.WEEKDAY_DEMAND[self.period.date_of(d).weekday()] for d in days]
        picked_days = rng.choices(days, cum_weights=cumulative(weekday), k=count)
        hours = rng.choices(range(24), cum_weights=cumulative(rates.HOURLY_DEMAND), k=count)
        rnd = rng.random
        return sorted(
            d * DAY + h * 3600 + int(rnd() * 3600) for d, h in zip(picked_days, hours, strict=True)
        )

    def write_year(
        self, rng: random.Random, year: int, first: int, after: int, sink, seeds: list
    ) -> int:
        """Write the year's incidents and deployments; crime seeds are appended to `seeds`."""
        times = self._times(rng, first, after, self.expected(after - first))
        # The last day ends at midnight London time: in summer an hour of UTC is the next day.
        count = bisect_left(times, self.period.end_second)
        del times[count:]
        kinds = rng.choices(self.kinds, cum_weights=self.kind_cum, k=count)
        areas = rng.choices(range(len(self.areas)), cum_weights=self.area_cum, k=count)
        # The hot loop: moments are formatted inline from the period's tables (see clock).
        prefix, clock = self.period.moment_prefix, self.period.second_text
        end = self.period.end_second
        rnd, gauss = rng.random, rng.gauss
        pick = self.pools.pick
        incidents: list[tuple] = []
        deployments: list[tuple] = []
        for i in range(count):
            t0, kind, area = times[i], kinds[i], areas[i]
            urn = f"CC{year}{i + 1:07d}"
            grade = GRADES[min(bisect_right(kind.grade_cum, rnd() * kind.grade_cum[-1]), 3)]
            qualifiers = [q for q, chance in kind.qualifiers if rnd() < chance]
            if "FIREARM" in qualifiers and rnd() < rates.DISCHARGE_PER_FIREARMS_OPERATION:
                qualifiers.append("FIREARM_DISCHARGE")
            opening = kind.code
            r = rnd()
            for alt, acc in kind.opened:
                if r < acc:
                    opening = alt
                    break
            created = prefix[t0 // DAY] + clock[t0 % DAY]
            if rnd() < rates.CALL_HANDLED_SHARE:
                handler = pick(rng, "call_handler", None, t0 // DAY, [])
                if handler is not None:
                    ended = t0 + 120 + int(rnd() * 780)
                    cleared = prefix[ended // DAY] + clock[ended % DAY] if ended < end else ""
                    deployments.append((urn, handler.staff_id, "call_handler", created, cleared))
            crew: tuple[Person, ...] = ()
            if grade == "R":
                # Resolved without attendance in ~20 minutes (median; assumption).
                closed = t0 + int(exp(gauss(7.1, 0.8)))
            else:
                crew, closed = self._attend(
                    rng, kind, grade, qualifiers, area, t0, urn, deployments
                )
            incidents.append(
                (
                    urn,
                    created,
                    prefix[closed // DAY] + clock[closed % DAY] if closed < end else "",
                    opening,
                    kind.code,
                    "|".join(qualifiers),
                    grade,
                    self.areas[area][1],
                )
            )
            if kind.crime and rnd() < kind.crime:
                hocr = kind.hocr[min(bisect_right(kind.hocr_cum, rnd()), len(kind.hocr) - 1)]
                # Recorded as a crime ~2 hours after the log (median; assumption).
                reported = t0 + int(exp(gauss(8.9, 1.0)))
                seeds.append(
                    CrimeSeed(reported, hocr, kind.code, "CHILD" in qualifiers, urn, area, crew)
                )
            if len(deployments) >= CHUNK:
                sink.write("cc_incidents", year, incidents)
                sink.write("cc_deployments", year, deployments)
                incidents, deployments = [], []
        sink.write("cc_incidents", year, incidents)
        sink.write("cc_deployments", year, deployments)
        return count

    def _attend(self, rng, kind: Kind, grade, qualifiers, area, t0, urn, out) -> tuple:
        """Deploy a crew; returns (crew, closing second)."""
        end = self.period.end_second
        rnd, gauss = rng.random, rng.gauss
        arrive = t0 + int(exp(gauss(0, 0.6)) * rates.ARRIVAL_MINUTES[grade] * 60)
        if arrive >= end:
            return (), end  # still waiting for attendance when the period ends
        lead = kind.lead if kind.lead_share and rnd() < kind.lead_share else "response"
        if lead == "response" and rnd() < (
            rates.NEIGHBOURHOOD_TAKES_SCHEDULED if grade == "S" else rates.NEIGHBOURHOOD_TAKES_OTHER
        ):
            lead = "neighbourhood"
        wanted: list[tuple[str, int]] = []  # (pool, how many), first arrivals first
        if "FIREARM" in qualifiers:
            wanted.append(("firearms", _draw(rng, rates.FIREARMS_OFFICERS)))
        if kind.code == "RTC_FATAL":  # the nearest response crew gets there first
            wanted.append(("response", 1 + int(rnd() * 2)))
        wanted.append((lead, kind.officers or _draw(rng, rates.OFFICERS_BY_GRADE[grade])))
        sergeant = "FIREARM" in qualifiers or rnd() < kind.supervisor
        if sergeant:
            wanted.append(("firearms_sgt" if "FIREARM" in qualifiers else lead + "_sgt", 1))
        area_code = self.areas[area][0]
        prefix, clock = self.period.moment_prefix, self.period.second_text
        pick = self.pools.pick
        crew: list[Person] = []
        at, last_clear = arrive, arrive
        for pool, count in wanted:
            local = area_code if pool in LOCAL_POOLS or pool[:-4] in LOCAL_POOLS else None
            for _ in range(count):
                if at >= end:
                    break
                person = pick(rng, pool, local, at // DAY, crew)
                if person is None:
                    continue
                role = (
                    "supervisor"
                    if pool.endswith("_sgt")
                    else ("attending" if crew else "first_on_scene")
                )
                cleared = at + int(exp(gauss(0, 0.5)) * kind.scene_seconds)
                if cleared > last_clear:
                    last_clear = cleared
                out.append(
                    (
                        urn,
                        person.staff_id,
                        role,
                        prefix[at // DAY] + clock[at % DAY],
                        prefix[cleared // DAY] + clock[cleared % DAY] if cleared < end else "",
                    )
                )
                crew.append(person)
                at += 30 + int(rnd() * 870)
        closed = last_clear + 300 + int(rnd() * 3300)
        sent = t0 + 30 + int(rnd() * 270)
        if crew and sent < end and rnd() < DISPATCHED_SHARE:
            dispatcher = pick(rng, "dispatcher", None, sent // DAY, [])
            if dispatcher is not None:
                out.append(
                    (
                        urn,
                        dispatcher.staff_id,
                        "dispatcher",
                        prefix[sent // DAY] + clock[sent % DAY],
                        prefix[closed // DAY] + clock[closed % DAY] if closed < end else "",
                    )
                )
        return tuple(crew), closed
