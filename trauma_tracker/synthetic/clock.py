"""The generated period, and fast text for its days and moments.

Times inside the generator are whole seconds (or days) counted from the period's first
midnight, UTC. Formatting tens of millions of timestamps through `datetime` would dominate
the run, so every day's prefix and every second of a day is formatted once, up front.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from engine.sqltime import LONDON

DAY = 86_400
# Rest days may be cancelled this far ahead of the period's end, so day text reaches past it.
LOOKAHEAD_DAYS = 400


@dataclass
class Period:
    """From `start` (inclusive) to `end` (exclusive): the data runs up to `end`'s midnight,
    London time (the force's day, and the day `--end` and `evaluate --as-of` name)."""

    start: date
    end: date
    days: int = field(init=False)
    day_text: list[str] = field(init=False, repr=False)
    moment_prefix: list[str] = field(init=False, repr=False)
    second_text: list[str] = field(init=False, repr=False)
    year_by_day: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.days = (self.end - self.start).days
        first = self.start.toordinal()
        self.day_text = [
            date.fromordinal(first + d).isoformat() for d in range(self.days + LOOKAHEAD_DAYS)
        ]
        self.moment_prefix = [t + "T" for t in self.day_text]
        self.year_by_day = [int(t[:4]) for t in self.day_text]
        self.second_text = [
            f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
        ]

    @property
    def end_second(self) -> int:
        """The first second after the period: `end`'s midnight in London. In summer that is
        an hour before midnight UTC, so nothing is dated on the next London day."""
        midnight = datetime.combine(self.end, time(), LONDON).astimezone(UTC)
        return int((midnight - datetime.combine(self.start, time(), UTC)).total_seconds())

    def date_of(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def day_index(self, when: date) -> int:
        return (when - self.start).days

    def moment(self, second: int) -> str:
        day, rest = divmod(second, DAY)
        return self.moment_prefix[day] + self.second_text[rest]

    def years(self) -> list[tuple[int, int, int]]:
        """Each calendar year touched: (year, first day, day after the last), clipped."""
        out = []
        year = self.start.year
        while True:
            first = max(0, self.day_index(date(year, 1, 1)))
            after = min(self.days, self.day_index(date(year + 1, 1, 1)))
            if first >= self.days:
                break
            out.append((year, first, after))
            year += 1
        return out

    def year_of_second(self, second: int) -> int:
        return self.year_by_day[second // DAY]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw; the standard library has none."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def cumulative(weights: list[float] | tuple[float, ...]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out
