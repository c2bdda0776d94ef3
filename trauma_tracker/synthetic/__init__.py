"""A synthetic police force's feeds, for demos, tests and benchmarks.

`generate_force` writes every feed of CONTRACT.md section 1 for a force of a given
headcount over the `years` up to and including the day `end`: units and people (with their
history of moves, joiners and leavers), then, per calendar year, incident logs and
deployments, crimes and involvements, cancelled rest days and sickness absence. Rates come
from `rates` and scale with the officer headcount. Output is byte-for-byte the same for the
same arguments.
"""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from trauma_tracker.synthetic import rates
from trauma_tracker.synthetic.attendance import write_absences, write_cancellations
from trauma_tracker.synthetic.clock import Period
from trauma_tracker.synthetic.crimes import Crimes
from trauma_tracker.synthetic.events import Incidents
from trauma_tracker.synthetic.faults import UNKNOWN_STAFF_FROM, FaultPlan
from trauma_tracker.synthetic.force import Force, build_force
from trauma_tracker.synthetic.output import FORMATS, Sink
from trauma_tracker.synthetic.pipeline import (
    PARALLEL_OFFICER_YEARS,
    can_fork,
    run_parallel,
    run_serial,
)
from trauma_tracker.synthetic.pools import Pools
from trauma_tracker.synthetic.staffing import Person, Staffing

__all__ = ["generate_force"]

MANIFEST = "MANIFEST.json"
MIN_PEOPLE = 10


def generate_force(
    out_dir: Path,
    *,
    people: int = 600,
    years: float = 2,
    seed: int = 1,
    dirty: bool = False,
    end: date | None = None,
    fmt: str = "csv",
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> dict[str, Any]:
    """Write a synthetic force's feed files into `out_dir`; returns the manifest.

    `people` is the headcount at any one time (leavers are replaced, so more distinct
    people appear over the years). The period is the `years` up to and including the day
    `end` (default: today, UTC): whole calendar years end on 31 December. With `dirty`, a
    few rows of each fault kind are spoiled and one file's last line is cut off;
    MANIFEST.json lists each fault with its file and physical line. `parallel` draws crimes in
    a second process (default: for large forces, where fork is available); the bytes written
    are the same either way.

    :raise ValueError: fewer than MIN_PEOPLE people, a period under a day, an unknown format.
    """
    if people < MIN_PEOPLE:
        raise ValueError(f"people must be at least {MIN_PEOPLE}, not {people}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    end = end or datetime.now(UTC).date()
    days = round(years * 365.25)
    if days < 1:
        raise ValueError(f"years must cover at least a day, not {years!r}")
    # Period counts its end exclusively: the day after `end` is where the data stops.
    period = Period(end - timedelta(days=days - 1), end + timedelta(days=1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Millions of short-lived tuples and no reference cycles: the cyclic collector would only
    # rescan the long-lived people and pools again and again (about a fifth of the run).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(out_dir, people, years, seed, dirty, end, fmt, period, progress, parallel)
    finally:
        if collecting:
            gc.enable()


def _generate(out_dir, people, years, seed, dirty, end, fmt, period, progress, parallel) -> dict:
    say = progress or (lambda message: None)
    force = build_force(people)
    staff = Staffing(force, period, random.Random(f"{seed}:staffing")).run()
    officers = force.officers()
    if len(staff) >= UNKNOWN_STAFF_FROM:
        raise ValueError(f"people={people} over {years} years is more staff than ids allow")
    say(f"force: {len(force.units)} units, {len(staff)} people, {officers} officer posts")

    plan = None
    if dirty:
        plan = FaultPlan(random.Random(f"{seed}:faults"), _expected(force, period))
    sink = Sink(out_dir, fmt, plan)
    sink.write("units", None, [(u.unit_id, u.parent_id, u.level, u.name) for u in force.units])
    sink.write("people", None, _people_rows(staff, period))
    write_absences(staff, period, random.Random(f"{seed}:absences"), sink)
    say("absences written")
    write_cancellations(staff, force.posts, period, random.Random(f"{seed}:rest-days"), sink)
    say("rest day cancellations written")

    pools = Pools(staff, force.posts, period.days)
    incidents = Incidents(force, period, pools, officers)
    crimes = Crimes(force, period, pools, officers)
    if parallel is None:
        officer_years = officers * period.days / 365.25
        parallel = can_fork() and officer_years >= PARALLEL_OFFICER_YEARS
    if parallel:
        files, applied = run_parallel(
            incidents, crimes, period, seed, sink, lambda: Sink(out_dir, fmt, plan), say
        )
        files.update(sink.close())
        if plan is not None:
            plan.applied.extend(applied)
    else:
        run_serial(incidents, crimes, period, seed, sink, say)
        files = sink.close()
    files = dict(sorted(files.items()))
    if plan is not None:
        plan.truncate(files)
    manifest = _manifest(people, years, seed, dirty, end, fmt, period, force, staff, files, plan)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _people_rows(staff: list[Person], period: Period) -> list[tuple]:
    rows = []
    for person in staff:
        started = person.service_start.isoformat()
        left = period.day_text[person.leave_day] if person.leave_day is not None else ""
        for day, (rank, role, unit, boss) in person.versions:
            rows.append(
                (
                    person.staff_id,
                    person.display_name,
                    person.email,
                    person.collar,
                    person.staff_type,
                    rank,
                    role,
                    unit,
                    boss,
                    started,
                    left,
                    period.day_text[day],
                )
            )
    return rows


def _expected(force: Force, period: Period) -> dict[str, int]:
    """Row counts per feed to expect, for placing faults inside the data (see faults.REACH).
    The multipliers are what the generator gives (measured), not rates of their own."""
    years = period.days / 365.25
    officers = force.officers()
    incidents = rates.INCIDENTS_PER_OFFICER_YEAR * officers * years
    crimes = rates.CRIMES_PER_OFFICER_YEAR * officers * years
    cancellations = rates.CANCELLED_REST_DAYS_PER_OFFICER_YEAR * officers * years
    return {
        "cc_incidents": int(incidents),
        "cc_deployments": int(incidents * 2.7),
        "rms_occurrences": int(crimes),
        "rms_involvements": int(crimes * 1.3),
        "rest_day_cancellations": int(cancellations * 0.9),
        "absences": int(len(force.posts) * years),
    }


def _manifest(people, years, seed, dirty, end, fmt, period, force: Force, staff, files, plan):
    counts: dict[str, int] = {}
    for file in files.values():
        counts[file.feed] = counts.get(file.feed, 0) + file.records
    return {
        "generator": "trauma_tracker.synthetic",
        "parameters": {
            "people": people,
            "years": float(years),
            "seed": seed,
            "dirty": dirty,
            "end": end.isoformat(),
            "format": fmt,
        },
        "period": {"first_day": period.start.isoformat(), "last_day": end.isoformat()},
        "officers": force.officers(),
        "distinct_people": len(staff),
        "counts": counts,
        "files": {name: file.records for name, file in files.items()},
        "faults": sorted(plan.applied, key=lambda f: (f["file"], f["line"])) if plan else [],
    }
