"""Recorded crime (RMS occurrences) and the people involved in each investigation.

Crimes come from incident logs (linked by `linked_incident_urn`) and from other routes
(online, front counter, police-generated) to make up the force's crime rate. Each gets an
officer in charge for as long as it is open; one who leaves the force or is reassigned hands
over to another. Serious crimes add investigators, interviewers and family liaison officers;
indecent-image cases add image reviewers.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from operator import attrgetter

from trauma_tracker.synthetic import rates
from trauma_tracker.synthetic.clock import DAY, Period, cumulative, lognormal
from trauma_tracker.synthetic.events import CHUNK, CrimeSeed, linked_crimes_per_incident
from trauma_tracker.synthetic.force import Force
from trauma_tracker.synthetic.pools import Pools, off
from trauma_tracker.synthetic.staffing import Person

UNLINKED_PER_OFFICER_YEAR = (
    rates.CRIMES_PER_OFFICER_YEAR - rates.INCIDENTS_PER_OFFICER_YEAR * linked_crimes_per_incident()
)
assert UNLINKED_PER_OFFICER_YEAR > 0, "linked crimes exceed the crime rate: check the rates"
DOMESTIC_CODES = frozenset({"8U"})
HATE_CLASSES = frozenset({"violence", "volume"})
# The time of day (17:00, in seconds) a leaver hands their cases over on their last day.
HANDOVER_SECOND = 17 * 3600
MAX_OIC_CHAIN = 5


class Crimes:
    def __init__(self, force: Force, period: Period, pools: Pools, officers: int) -> None:
        self.period = period
        self.pools = pools
        self.officers = officers
        self.areas = force.areas
        self.area_cum = cumulative([share for _, _, share in force.areas])
        self.unlinked = [code for code, _ in rates.UNLINKED_CRIMES]
        self.unlinked_cum = cumulative([w for _, w in rates.UNLINKED_CRIMES])
        self.classes = {
            name: (cls, [p for p, _ in cls.oic], cumulative([w for _, w in cls.oic]))
            for name, cls in rates.CRIME_CLASSES.items()
        }
        self.iioc = [c for c, _ in rates.IIOC_CATEGORIES]
        self.iioc_cum = cumulative([w for _, w in rates.IIOC_CATEGORIES])

    def _unlinked(self, rng: random.Random, first: int, after: int) -> list[CrimeSeed]:
        count = round(UNLINKED_PER_OFFICER_YEAR * self.officers * (after - first) / 365.25)
        codes = rng.choices(self.unlinked, cum_weights=self.unlinked_cum, k=count)
        areas = rng.choices(range(len(self.areas)), cum_weights=self.area_cum, k=count)
        hours = rng.choices(range(24), cum_weights=cumulative(rates.HOURLY_DEMAND), k=count)
        rnd, span = rng.random, after - first
        return [
            CrimeSeed(
                (first + int(rnd() * span)) * DAY + h * 3600 + int(rnd() * 3600),
                code,
                None,
                False,
                "",
                area,
                (),
            )
            for code, area, h in zip(codes, areas, hours, strict=True)
        ]

    def write_year(
        self, rng: random.Random, year: int, first: int, after: int, seeds: list, sink
    ) -> tuple[int, list[CrimeSeed]]:
        """Write the year's occurrences and involvements; returns the count and the seeds
        reported after the year, for the next one."""
        seeds = sorted(seeds + self._unlinked(rng, first, after), key=attrgetter("reported"))
        last = min(after * DAY, self.period.end_second) - 1  # the period ends in London
        cut = bisect_right([s.reported for s in seeds], last)
        seeds, carry = seeds[:cut], seeds[cut:]
        if after >= self.period.days:
            carry = []  # reported after the period ends: not yet in the data
        occurrences: list[tuple] = []
        involvements: dict[int, list[tuple]] = {}
        for n, seed in enumerate(seeds, 1):
            ref = f"RM{year}{n:07d}"
            occurrences.append(self._occurrence(rng, ref, seed, involvements))
            if len(occurrences) >= CHUNK:
                self._flush(sink, year, occurrences, involvements)
                occurrences = []
        self._flush(sink, year, occurrences, involvements)
        return len(seeds), carry

    def _flush(self, sink, year, occurrences, involvements) -> None:
        sink.write("rms_occurrences", year, occurrences)
        for y in sorted(involvements):
            sink.write("rms_involvements", y, involvements[y])
        involvements.clear()

    def _occurrence(self, rng, ref: str, seed: CrimeSeed, out: dict) -> tuple:
        class_name = rates.CRIME_CLASS_OF.get(seed.hocr, "volume")
        cls, pools, pool_cum = self.classes[class_name]
        end = self.period.end_second
        t0 = seed.reported
        closed = t0 + int(lognormal(rng, cls.days_open * DAY, 1.0))
        flags = []
        if seed.incident_code == "DOMESTIC" or seed.hocr in DOMESTIC_CODES:
            flags.append("DOMESTIC")
        if seed.child or class_name in ("child", "iioc"):
            flags.append("CHILD")
        if class_name in HATE_CLASSES and rng.random() < rates.HATE_FLAG_SHARE:
            flags.append("HATE")
        iioc = ""
        if class_name == "iioc":
            iioc = self.iioc[min(bisect_right(self.iioc_cum, rng.random()), len(self.iioc) - 1)]
        moment = self.period.moment
        area_code, area_unit, _ = self.areas[seed.area]
        row = (
            ref,
            moment(t0),
            seed.hocr,
            "|".join(flags),
            iioc,
            "closed" if closed < end else "open",
            moment(closed) if closed < end else "",
            seed.urn,
            area_unit,
        )
        stop = closed if closed < end else None
        pool = pools[min(bisect_right(pool_cum, rng.random()), len(pools) - 1)]
        involve = _Involver(self, rng, ref, area_code, t0, stop, out)

        fos = seed.crew[0] if seed.crew else None
        first = fos if cls.first_on_scene_oic and rng.random() < cls.first_on_scene_oic else None
        involve.officer_in_charge(first, pool, t0 + int(lognormal(rng, 4 * 3600, 1.0)))
        fewest, most = cls.investigators
        for _ in range(fewest + int(rng.random() * (most - fewest + 1)) if most else 0):
            start = t0 + int(lognormal(rng, DAY, 1.0))
            involve.one(None, pool, "investigator", start, lognormal(rng, cls.days_open * DAY, 0.8))
        if rng.random() < cls.interviewer:
            start = t0 + int(lognormal(rng, 3 * DAY, 1.0))
            involve.one(None, pool, "interviewer", start, lognormal(rng, 3 * 3600, 0.5))
        for _ in range(cls.family_liaison):
            start = t0 + int(lognormal(rng, 6 * 3600, 0.7))
            involve.one(None, pool, "family_liaison", start, lognormal(rng, 120 * DAY, 0.7))
        for _ in range(rng.randint(1, cls.image_reviewers) if cls.image_reviewers else 0):
            start = t0 + int(lognormal(rng, 20 * DAY, 0.8))
            involve.one(None, "cpoa", "image_reviewer", start, lognormal(rng, 7 * DAY, 0.8))
        for person in seed.crew:
            if cls.attending and rng.random() < cls.attending:
                involve.one(person, pool, "attending", t0, lognormal(rng, 2 * 3600, 0.5))
        if rng.random() < rates.OTHER_INVOLVEMENT:
            start = t0 + int(lognormal(rng, 10 * DAY, 1.0))
            involve.one(None, "cid_staff", "other", start, lognormal(rng, 5 * DAY, 0.8))
        return row


class _Involver:
    """Writes one occurrence's involvements, keeping each inside the person's employment."""

    def __init__(self, crimes: Crimes, rng, ref: str, area: str, opened: int, stop, out) -> None:
        self.crimes = crimes
        self.opened = opened
        self.rng = rng
        self.ref = ref
        self.area = area
        self.stop = stop  # the investigation's closing second, None while open
        self.out = out
        self.taken: list[Person] = []

    def _employed_until(self, person: Person) -> int | None:
        if person.leave_day is None:
            return None
        return person.leave_day * DAY + HANDOVER_SECOND

    def _write(self, person: Person, role: str, start: int, until: int | None) -> None:
        period = self.crimes.period
        end = period.end_second
        leaving = self._employed_until(person)
        if leaving is not None:
            # Handed over on the last day, never after it.
            leaving = min(max(start + 60, leaving), (person.leave_day + 1) * DAY - 1)
            until = leaving if until is None else min(until, leaving)
        if until is not None and until <= start:
            until = start + 60
        row = (
            self.ref,
            person.staff_id,
            role,
            period.moment(start),
            period.moment(until) if until is not None and until < end else "",
        )
        self.out.setdefault(period.year_by_day[start // DAY], []).append(row)
        self.taken.append(person)

    def _pick(self, pool: str, start: int) -> Person | None:
        local = self.area if pool in ("response", "neighbourhood", "cid", "cid_staff") else None
        return self.crimes.pools.pick(self.rng, pool, local, start // DAY, self.taken)

    def _usable(self, person: Person | None, start: int) -> bool:
        if person is None or person in self.taken:
            return False
        day = start // DAY
        if day < person.start_day or (person.leave_day is not None and day > person.leave_day):
            return False  # e.g. a scheduled job attended by a joiner the day after the report
        return not off(person, day)

    def one(self, person, pool: str, role: str, start: int, length: float) -> None:
        if start >= self.crimes.period.end_second:
            return
        if self.stop is not None and start >= self.stop:
            return  # the investigation closed before this part of it would have started
        if not self._usable(person, start):
            person = self._pick(pool, start)
            if person is None:
                return
        until = start + int(length)
        if self.stop is not None:
            until = min(until, self.stop)
        self._write(person, role, start, until)

    def officer_in_charge(self, first: Person | None, pool: str, start: int) -> None:
        """The OIC from assignment to closure, handed over when one leaves or is replaced."""
        end = self.crimes.period.end_second
        if self.stop is not None and start >= self.stop:
            start = self.stop - (self.stop - self.opened) // 2  # a case closed within hours
        person = first if self._usable(first, start) else self._pick(pool, start)
        for _ in range(MAX_OIC_CHAIN):
            if person is None or start >= end:
                return
            until = self.stop
            leaving = self._employed_until(person)
            if leaving is not None and (until is None or leaving < until):
                until = max(leaving, start + 60)
            if self.rng.random() < rates.OIC_REASSIGNED:
                moved = start + int(lognormal(self.rng, 30 * DAY, 0.8))
                until = moved if until is None else min(until, moved)
            self._write(person, "oic", start, until)
            if until is None or until >= end or until == self.stop:
                return
            start = until + 60
            person = self._pick(pool, start)
