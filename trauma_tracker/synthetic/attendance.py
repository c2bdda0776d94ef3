"""Sickness absence spells and cancelled rest days.

Absences are drawn before any incident, because a person off sick is not sent to one: the
spells become each person's `absences`, which the pools check.
"""

from __future__ import annotations

import math
import random
from datetime import date

from trauma_tracker.synthetic import rates
from trauma_tracker.synthetic.clock import Period, lognormal, poisson
from trauma_tracker.synthetic.force import Post
from trauma_tracker.synthetic.staffing import Person

# Spread of spell lengths around their mean (lognormal sigma; assumption: psychological
# spells have the longest tail).
SPELL_SIGMA = {"psychological": 1.0}
DEFAULT_SPELL_SIGMA = 0.8
# A spell is capped at a year of working days (pay and sickness procedures intervene).
MAX_SPELL_WORKING_DAYS = 260
# Share of injury spells that were injuries on duty (officers: see rates; PCSOs and staff, whose
# work is less often physical: assumptions).
INJURY_ON_DUTY_SHARE = {"officer": rates.INJURY_ON_DUTY_SHARE, "pcso": 0.4, "staff": 0.15}
OTHER_REASONS = ("special_leave", "bereavement", "carer")


def _working_to_calendar(working: float) -> int:
    # Short spells fall on consecutive shifts; longer ones span rest days (5 in 7).
    return max(1, math.ceil(working)) if working <= 3 else round(working * 7 / 5)


def _calendar_to_working(days: int) -> float:
    return float(days) if days <= 3 else float(round(days * 5 / 7))


def _spell_length(rng: random.Random, reason: str | None) -> float:
    if reason is None:
        return float(rng.randint(1, 5))
    mean = rates.SICKNESS_REASONS[reason].mean_spell
    sigma = SPELL_SIGMA.get(reason, DEFAULT_SPELL_SIGMA)
    working = lognormal(rng, mean / math.exp(sigma * sigma / 2), sigma)
    if working < 0.75:
        return 0.5  # a half day, sent home sick
    return float(min(MAX_SPELL_WORKING_DAYS, max(1, round(working))))


def write_absences(people: list[Person], period: Period, rng: random.Random, sink) -> int:
    """Draw every spell, record it on the person, and write the absences files."""
    days = period.days
    spells = []
    for person in people:
        if person.staff_type == "special":  # volunteers: no HR absence record
            continue
        first, last = person.start_day, person.last_day(days)
        years = (last - first + 1) / 365.25
        drawn: list[tuple[int, str | None]] = []
        for reason, (share, mean) in rates.SICKNESS_REASONS.items():
            per_year = rates.SICK_DAYS_PER_PERSON_YEAR * share / mean
            drawn.extend(
                (rng.randint(first, last), reason) for _ in range(poisson(rng, per_year * years))
            )
        other = poisson(rng, rates.OTHER_ABSENCES_PER_PERSON_YEAR * years)
        drawn.extend((rng.randint(first, last), None) for _ in range(other))
        drawn.sort(key=lambda d: d[0])
        previous_end = -2
        for start, reason in drawn:
            if start <= previous_end + 1:  # overlaps or touches the last spell
                continue
            working = _spell_length(rng, reason)
            end = start + _working_to_calendar(working) - 1
            if person.leave_day is not None and end > person.leave_day:  # cut short by leaving
                end = person.leave_day
                working = min(working, _calendar_to_working(end - start + 1))
            previous_end = end
            person.absences.append((start, min(end, days - 1)))
            if end >= days:  # still off at the end of the period
                working = min(working, _calendar_to_working(days - start))
            spells.append((start, person, end, reason, working))

    spells.sort(key=lambda s: (s[0], s[1].number))
    by_year: dict[int, list[tuple]] = {}
    for n, (start, person, end, reason, working) in enumerate(spells, 1):
        if reason is None:
            kind, group = "other", rng.choice(OTHER_REASONS)
        elif reason == "injury" and rng.random() < INJURY_ON_DUTY_SHARE[person.staff_type]:
            kind, group = "injury_on_duty", reason
        else:
            kind, group = "sickness", reason
        row = (
            f"ABS{n:08d}",
            person.staff_id,
            period.day_text[start],
            period.day_text[end] if end < days else "",
            kind,
            group,
            f"{working:g}",
        )
        by_year.setdefault(period.year_by_day[start], []).append(row)
    for year, rows in by_year.items():
        sink.write("absences", year, rows)
    return len(spells)


def _operation_days(period: Period, rng: random.Random) -> list[int]:
    """Planned operations each year: a summer festival, bonfire night, New Year's Eve, and a
    couple of others (visits, protests), as days of the period."""
    out = []
    for year in range(period.start.year, period.end.year + 1):
        first = period.day_index(date(year, 1, 1))
        out.extend(first + d for d in (175, 176, 177, 178, 308, 364))
        out.extend(first + rng.randrange(365) for _ in range(2))
    return sorted(out)


def write_cancellations(
    people: list[Person], posts: list[Post], period: Period, rng: random.Random, sink
) -> int:
    eligible = [
        p
        for p in posts
        if p.seat.staff_type == "officer"
        and p.rung <= 3
        and p.seat.role_group in rates.CANCELLATION_WEIGHT
    ]
    if not eligible:
        return 0
    # Weights are relative: normalise so the average eligible officer gets the headline rate.
    mean_weight = sum(rates.CANCELLATION_WEIGHT[p.seat.role_group] for p in eligible) / len(
        eligible
    )
    operations = _operation_days(period, rng)
    drawn = []
    for person in people:
        taken: set[int] = set()
        leave = person.leave_day
        for post_index, first, last in person.stints:
            seat = posts[post_index].seat
            weight = rates.CANCELLATION_WEIGHT.get(seat.role_group)
            if weight is None or seat.staff_type != "officer" or posts[post_index].rung > 3:
                continue
            per_year = rates.CANCELLED_REST_DAYS_PER_OFFICER_YEAR * weight / mean_weight
            for _ in range(poisson(rng, per_year * (last - first + 1) / 365.25)):
                notified, rest_day = _one_cancellation(rng, first, last, operations)
                if (leave is not None and rest_day > leave) or rest_day in taken:
                    continue
                taken.add(rest_day)
                drawn.append((notified, person.number, rest_day, person.staff_id))
    drawn.sort()
    by_year: dict[int, list[tuple]] = {}
    for n, (notified, _, rest_day, staff_id) in enumerate(drawn, 1):
        status = "reinstated" if rng.random() < rates.REINSTATED_SHARE else "cancelled"
        row = (
            f"RDC{n:08d}",
            staff_id,
            period.day_text[rest_day],
            period.day_text[notified],
            status,
        )
        by_year.setdefault(period.year_by_day[notified], []).append(row)
    for year, rows in by_year.items():
        sink.write("rest_day_cancellations", year, rows)
    return len(drawn)


def _one_cancellation(rng, first: int, last: int, operations: list[int]) -> tuple[int, int]:
    """(notified on, rest day) for a cancellation notified while in post."""
    if rng.random() < rates.PLANNED_OPERATION_SHARE:
        ahead = [d for d in operations if first + 15 <= d <= last + 90]
        if ahead:
            rest_day = rng.choice(ahead)
            notified = rest_day - rng.randint(15, 90)
            if first <= notified <= last:
                return notified, rest_day
    notified = rng.randint(first, last)
    if rng.random() < rates.SHORT_NOTICE_SHARE:
        notice = min(14, 1 + int(rng.expovariate(1 / 4)))
    else:
        notice = rng.randint(15, 90)
    return notified, notified + notice
