"""The demo's data: a synthetic force with faults, ingested and evaluated into a SQLite file
in one folder, made once and reused by the next run unless asked to start again.

The folder holds `feeds/` (the generated files, kept as they were made), `tracker.sqlite`,
`drop/` (a drop folder the scheduler watches: copy a feed file in to see it taken in),
`mail/` and `teams/` (every message the demo's local mail server and Teams webhook
received: .eml files and the cards as JSON), and `READY` once it is all prepared.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from engine.evaluation import run_evaluation
from engine.ingest.batches import Ingestor
from engine.ingest.files import ingest_files
from engine.scoring.criteria import load_criteria
from models.db import make_engine, migrate
from trauma_tracker.synthetic import generate_force

PEOPLE = 600
YEARS = 3.0
SEED = 1
READY = "READY"


def database_url(folder: Path) -> str:
    return f"sqlite:///{(folder / 'tracker.sqlite').resolve()}"


def prepare(
    folder: Path, rules_dir: Path, *, fresh: bool, say: Callable[[str], None]
) -> dict[str, int]:
    """Make (or, unless `fresh`, reuse) the demo's force in `folder`; returns counts."""
    folder = folder.resolve()
    if fresh and folder.exists():
        say(f"starting again: removing {folder}")
        shutil.rmtree(folder)
    for sub in ("drop", "mail", "teams"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url(folder))
    try:
        if (folder / READY).exists():
            migrate(engine)
            say(f"reusing the demo force in {folder} (--fresh to make a new one)")
            return {}
        started = time.monotonic()
        say(f"generating {PEOPLE} people over {YEARS:g} years, with faults, into {folder}/feeds")
        manifest = generate_force(
            folder / "feeds", people=PEOPLE, years=YEARS, seed=SEED, dirty=True
        )
        rows = sum(manifest.get("counts", {}).values())
        say(f"  {rows:,} rows written ({time.monotonic() - started:.0f} s)")
        migrate(engine)
        counts = {"rows": rows, "accepted": 0, "rejected": 0, "failed": 0}
        ingestor = Ingestor(engine)
        for report in ingest_files(ingestor, [folder / "feeds"], jobs=None):
            counts["accepted"] += report.accepted
            counts["rejected"] += report.rejected
            counts["failed"] += report.outcome == "failed"
            note = f", {report.rejected} rejected" if report.rejected else ""
            if report.outcome == "failed":
                note = ", could not be read (see the admin pages)"
            say(f"  ingested {Path(report.path).name}: {report.accepted:,} rows{note}")
        say(f"evaluating ({time.monotonic() - started:.0f} s so far)")
        criteria, text = load_criteria(rules_dir)
        report = run_evaluation(engine, criteria, text, rules_dir=rules_dir)
        say(
            f"  {report.people} people, {report.exposures:,} exposures, "
            f"{report.alerts_opened} alerts opened ({time.monotonic() - started:.0f} s)"
        )
        (folder / READY).write_text("prepared\n")
        return counts
    finally:
        engine.dispose()
