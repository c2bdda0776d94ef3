"""The yearly loop: incidents, then the crimes they lead to, serially or in two processes.

For a large force the crimes of a year are drawn in a forked child while the parent draws
the next year's incidents, which nearly halves the run on two cores. Each side writes its own
feeds with its own random streams, so both ways give the same bytes.
"""

from __future__ import annotations

import multiprocessing
import random
import traceback
from collections.abc import Callable

from trauma_tracker.synthetic.clock import Period
from trauma_tracker.synthetic.crimes import Crimes
from trauma_tracker.synthetic.events import CrimeSeed, Incidents
from trauma_tracker.synthetic.output import Sink, WrittenFile

# Below this many officer-years a second process costs more than it saves.
PARALLEL_OFFICER_YEARS = 1_500


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_serial(
    incidents: Incidents, crimes: Crimes, period: Period, seed: int, sink: Sink, say
) -> None:
    carry: list[CrimeSeed] = []
    for year, first, after in period.years():
        seeds: list[CrimeSeed] = []
        rng = random.Random(f"{seed}:incidents:{year}")
        logged = incidents.write_year(rng, year, first, after, sink, seeds)
        say(f"{year}: {logged:,} incidents")
        rng = random.Random(f"{seed}:crimes:{year}")
        recorded, carry = crimes.write_year(rng, year, first, after, carry + seeds, sink)
        say(f"{year}: {recorded:,} crimes")


def run_parallel(
    incidents: Incidents,
    crimes: Crimes,
    period: Period,
    seed: int,
    sink: Sink,
    crime_sink: Callable[[], Sink],
    say,
) -> tuple[dict[str, WrittenFile], list[dict]]:
    """Incidents here, crimes in a child; returns the child's files and applied faults."""
    context = multiprocessing.get_context("fork")
    to_child, from_parent = context.Pipe()
    to_parent, from_child = context.Pipe()
    sink.flush()  # the child inherits the open files: nothing may be left to write twice
    child = context.Process(
        target=_crime_worker,
        args=(crimes, period, seed, crime_sink, from_parent, to_parent),
        daemon=True,
    )
    child.start()
    try:
        for year, first, after in period.years():
            seeds: list[CrimeSeed] = []
            rng = random.Random(f"{seed}:incidents:{year}")
            logged = incidents.write_year(rng, year, first, after, sink, seeds)
            say(f"{year}: {logged:,} incidents")
            # Persons cross as staff numbers; the child maps them back to its own copies.
            to_child.send([(*s[:6], tuple(p.number for p in s.crew)) for s in seeds])
            while from_child.poll():
                _progress(from_child.recv(), say)
        while True:
            message = from_child.recv()
            if message[0] == "done":
                child.join()
                return message[1], message[2]
            _progress(message, say)
    except EOFError:
        raise RuntimeError("the crime generator process died without a word") from None
    finally:
        if child.is_alive():
            child.terminate()
            child.join()


def _progress(message: tuple, say) -> None:
    if message[0] == "error":
        raise RuntimeError(f"the crime generator process failed:\n{message[1]}")
    say(message[1])


def _crime_worker(crimes: Crimes, period: Period, seed: int, make_sink, inbox, outbox) -> None:
    try:
        by_number = {p.number: p for p in crimes.pools.people}
        sink = make_sink()
        if sink.faults is not None:
            sink.faults.applied = []  # this copy reports only what it applies itself
        carry: list[CrimeSeed] = []
        for year, first, after in period.years():
            seeds = [CrimeSeed(*s[:6], tuple(by_number[n] for n in s[6])) for s in inbox.recv()]
            rng = random.Random(f"{seed}:crimes:{year}")
            recorded, carry = crimes.write_year(rng, year, first, after, carry + seeds, sink)
            outbox.send(("progress", f"{year}: {recorded:,} crimes"))
        files = sink.close()
        applied = sink.faults.applied if sink.faults is not None else []
        outbox.send(("done", files, applied))
    except BaseException:
        outbox.send(("error", traceback.format_exc()))
        raise
