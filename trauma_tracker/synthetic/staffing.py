"""People over the period: who holds which post on which day, and their `people` versions.

Every post starts held. People leave at the force's leaving rates; a vacancy above the
bottom rung is filled the next day by promoting someone from the rung below (whose own post
then falls vacant), and a bottom-rung vacancy by a new joiner. People also swap teams. Each
change writes a new version for the people it touches: the mover, and everyone whose
supervising post changed hands.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from trauma_tracker.synthetic import rates
from trauma_tracker.synthetic.clock import Period, poisson
from trauma_tracker.synthetic.force import Force, Post
from trauma_tracker.synthetic.names import email_for, person_name

# Years in service already at the period start, by rung (assumption: a sergeant has served
# a few years as a constable, an inspector longer, and so on).
MIN_SERVICE_YEARS = (0.0, 4.0, 8.0, 12.0, 16.0, 19.0, 21.0, 23.0, 25.0, 25.0)
MEAN_EXTRA_SERVICE_YEARS = 7.0
MAX_SERVICE_YEARS = 34.0
# A person due to leave within this many days is not promoted.
PROMOTION_MARGIN_DAYS = 60


@dataclass(eq=False, slots=True)
class Person:
    number: int
    staff_id: str
    display_name: str
    email: str
    collar: str
    staff_type: str
    service_start: date
    start_day: int  # first day employed inside the period
    leave_day: int | None = None  # last day employed, when inside the period
    post: int | None = None
    versions: list[list] = field(default_factory=list)  # [day, (rank, role, unit, boss id)]
    stints: list[list[int]] = field(default_factory=list)  # [post, first day, last day]
    absences: list[tuple[int, int]] = field(default_factory=list)  # (first day, last day)

    def last_day(self, period_days: int) -> int:
        return self.leave_day if self.leave_day is not None else period_days - 1


class Staffing:
    def __init__(self, force: Force, period: Period, rng: random.Random) -> None:
        self.posts = force.posts
        self.period = period
        self.rng = rng
        self.people: list[Person] = []
        self.holder: list[Person | None] = [None] * len(self.posts)
        self.events: list[tuple[int, int, str, object]] = []
        self.dirty: dict[int, Person] = {}
        self.collars = 0
        self.sequence = 0
        self.by_rung: dict[tuple, list[int]] = {}
        for post in self.posts:
            self.by_rung.setdefault((post.ladder, post.rung), []).append(post.index)
            self.by_rung.setdefault((post.seat.staff_type, post.rung), []).append(post.index)

    def run(self) -> list[Person]:
        """Simulate the period; returns everyone who held a post, by staff number."""
        numbers = list(range(1, len(self.posts) + 1))
        self.rng.shuffle(numbers)  # staff numbers don't follow rank
        for post, number in zip(self.posts, numbers, strict=True):
            years = MIN_SERVICE_YEARS[post.rung] + self.rng.expovariate(
                1 / MEAN_EXTRA_SERVICE_YEARS
            )
            served = timedelta(days=round(min(years, MAX_SERVICE_YEARS) * 365.25) + 1)
            self._occupy(self._hire(number, self.period.start - served, 0, post), post, 0)
        self._plan_transfers()
        self._flush(0)
        while self.events:
            day = self.events[0][0]
            while self.events and self.events[0][0] == day:
                _, _, kind, payload = heapq.heappop(self.events)
                if kind == "leave":
                    self._leave(payload, day)
                else:
                    self._swap(*payload, day)
            self._flush(day)
        for person in self.people:
            if person.stints and person.stints[-1][2] < 0:  # still held at the end
                person.stints[-1][2] = self.period.days - 1
        self.people.sort(key=lambda p: p.number)
        return self.people

    # -- people ----------------------------------------------------------------------------

    def _hire(self, number: int, service_start: date, day: int, post: Post) -> Person:
        first, last = person_name(self.rng)
        collar = ""
        if post.seat.staff_type != "staff":
            self.collars += 1
            # A fixed stride through 5-digit numbers gives unique, unordered collar numbers.
            collar = str(10_000 + (self.collars * 7_919) % 90_000)
        person = Person(
            number,
            f"S{number:06d}",
            f"{first} {last}",
            email_for(first, last, number),
            collar,
            post.seat.staff_type,
            service_start,
            day,
        )
        self.people.append(person)
        years = self.rng.expovariate(rates.LEAVING_RATE[person.staff_type])
        leave = day + int(years * 365.25)
        if leave + 1 < self.period.days:
            person.leave_day = leave
            self._schedule(leave + 1, "leave", person)
        return person

    def _schedule(self, day: int, kind: str, payload: object) -> None:
        self.sequence += 1  # ties break in scheduling order, never by comparing payloads
        heapq.heappush(self.events, (day, self.sequence, kind, payload))

    def _occupy(self, person: Person, post: Post, day: int) -> None:
        self.holder[post.index] = person
        person.post = post.index
        person.stints.append([post.index, day, -1])
        self._touch(person)
        for sub in post.subordinates:
            if self.holder[sub] is not None:
                self._touch(self.holder[sub])

    def _vacate(self, person: Person, day: int) -> Post:
        post = self.posts[person.post]
        self.holder[post.index] = None
        person.post = None
        stint = person.stints[-1]
        if stint[1] >= day:  # held for no whole day: drop it
            person.stints.pop()
        else:
            stint[2] = day - 1
        return post

    def _touch(self, person: Person) -> None:
        self.dirty[person.number] = person

    # -- events ----------------------------------------------------------------------------

    def _leave(self, person: Person, day: int) -> None:
        if person.post is None:
            return
        self.dirty.pop(person.number, None)
        self._fill(self._vacate(person, day), day)

    def _fill(self, post: Post, day: int) -> None:
        """Promote from the rung below, else hire; the promoted person's post is then filled."""
        candidate = self._promotable(post, day) if post.rung > 0 else None
        if candidate is None:
            number = len(self.people) + 1
            start = self.period.date_of(day)
            self._occupy(self._hire(number, start, day, post), post, day)
            return
        old = self._vacate(candidate, day)
        self._occupy(candidate, post, day)
        self._fill(old, day)

    def _promotable(self, post: Post, day: int) -> Person | None:
        staff_type = post.seat.staff_type
        for rung in range(post.rung - 1, -1, -1):
            pool = self.by_rung.get((post.ladder, rung)) or self.by_rung.get((staff_type, rung))
            if not pool:
                continue
            for _ in range(8):
                person = self.holder[self.rng.choice(pool)]
                if person is None:
                    continue
                if person.leave_day is None or person.leave_day > day + PROMOTION_MARGIN_DAYS:
                    return person
            return None
        return None

    def _plan_transfers(self) -> None:
        groups: dict[tuple, list[int]] = {}
        for post in self.posts:
            groups.setdefault((post.ladder, post.rung, post.seat.rank), []).append(post.index)
        movable = [p for group in groups.values() if len(group) > 1 for p in group]
        if not movable or self.period.days < 2:
            return
        years = self.period.days / 365.25
        for _ in range(poisson(self.rng, rates.TRANSFER_RATE * len(self.posts) * years / 2)):
            a = self.posts[self.rng.choice(movable)]
            group = groups[(a.ladder, a.rung, a.seat.rank)]
            b = self.posts[self.rng.choice(group)]
            if b.unit_id != a.unit_id:
                self._schedule(self.rng.randrange(1, self.period.days), "swap", (a, b))

    def _swap(self, a: Post, b: Post, day: int) -> None:
        first, second = self.holder[a.index], self.holder[b.index]
        if first is None or second is None:
            return
        self._vacate(first, day)
        self._vacate(second, day)
        self._occupy(first, b, day)
        self._occupy(second, a, day)

    # -- versions --------------------------------------------------------------------------

    def _flush(self, day: int) -> None:
        for person in self.dirty.values():
            if person.post is None:
                continue
            post = self.posts[person.post]
            boss = self.holder[post.boss] if post.boss is not None else None
            seat = post.seat
            version = (seat.rank, seat.role_group, post.unit_id, boss.staff_id if boss else "")
            versions = person.versions
            if versions and versions[-1][0] == day:
                versions.pop()
            if not versions or versions[-1][1] != version:
                versions.append([day, version])
        self.dirty.clear()
