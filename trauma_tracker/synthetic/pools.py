"""Who can be sent, on a given day: the people holding posts of a pool, by area.

Picking is the generator's hottest path (millions of times for a large force), so each
pool is pre-split into 28-day slices holding everyone who held such a post during the slice,
with cumulative weights for a bisect. A pick then checks the exact day: employed in that
post and not off sick.
"""

from __future__ import annotations

import random
from bisect import bisect_right

from trauma_tracker.synthetic.force import Post
from trauma_tracker.synthetic.staffing import Person

SLICE_DAYS = 28
# Draws before a pick gives up (everyone drawn was off, absent or already on the job).
ATTEMPTS = 8

Entry = tuple[Person, int, int]  # who, first day, last day in the post


class Pools:
    def __init__(self, people: list[Person], posts: list[Post], days: int) -> None:
        self.people = people
        slices = days // SLICE_DAYS + 1
        built: dict[tuple[str, str | None], list[tuple[list[Entry], list[float]]]] = {}
        for person in people:
            for post_index, first, last in person.stints:
                post = posts[post_index]
                pool = post.seat.pool
                if pool is None or last < first:
                    continue
                weight = post.seat.weight
                for key in ((pool, post.area), (pool, None)) if post.area else ((pool, None),):
                    lanes = built.get(key)
                    if lanes is None:
                        lanes = built[key] = [([], []) for _ in range(slices)]
                    for s in range(first // SLICE_DAYS, last // SLICE_DAYS + 1):
                        entries, cum = lanes[s]
                        entries.append((person, first, last))
                        cum.append((cum[-1] if cum else 0.0) + weight)
        self.lanes = built

    def pick(
        self, rng: random.Random, pool: str, area: str | None, day: int, taken: list[Person]
    ) -> Person | None:
        """Someone from the pool (in the area, else anywhere) free on `day`, or None."""
        lanes = self.lanes.get((pool, area))
        if lanes is not None:
            entries, cum = lanes[day // SLICE_DAYS]
            if entries:
                total, top = cum[-1], len(entries) - 1
                rnd = rng.random
                for _ in range(ATTEMPTS):
                    person, first, last = entries[min(bisect_right(cum, rnd() * total), top)]
                    if first <= day <= last and person not in taken:
                        for off_first, off_last in person.absences:
                            if off_first <= day <= off_last:
                                break
                        else:
                            return person
        if area is not None:
            return self.pick(rng, pool, None, day, taken)
        return None


def off(person: Person, day: int) -> bool:
    """Absent (sick or on leave) on `day`."""
    return any(first <= day <= last for first, last in person.absences)
