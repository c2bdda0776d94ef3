"""The load a rule pack brings, on a generated force: what README's load table is made from.

    python bench/load.py [--people 5800] [--rules DIR] [--year 2025]

A force of `--people` (5,800 is the size of Avon and Somerset) over two years up to the end of
`--year` is generated, ingested into a fresh SQLite file and evaluated at the year's end; then
`rules backtest` replays the pack over that calendar year, weekly, as the steering group would
run it. Printed and written to bench/out/load-<people>.json: the alerts per rule, the load
(per 100 staff a year, per supervisor a month, per working day for the wellbeing team, the
share of staff alerted), and the year's exposures per tier and category, which is what the
alerts are made of.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.evaluation import run_evaluation  # noqa: E402
from engine.ingest.batches import Ingestor  # noqa: E402
from engine.ingest.files import ingest_files  # noqa: E402
from engine.rules.backtest import backtest, opening, step_times  # noqa: E402
from engine.rules.pack import load_pack  # noqa: E402
from engine.scoring.criteria import load_criteria  # noqa: E402
from models import Exposure, table_of  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from trauma_tracker.settings import SHIPPED_RULES  # noqa: E402
from trauma_tracker.synthetic import generate_force  # noqa: E402

OUT = ROOT / "bench" / "out"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5800)
    parser.add_argument("--rules", type=Path, default=SHIPPED_RULES)
    parser.add_argument("--year", type=int, default=2025)
    options = parser.parse_args()
    first, last = date(options.year, 1, 1), date(options.year, 12, 31)
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / f"load-force-{options.people}-{last.isoformat()}"
    if not (folder / "MANIFEST.json").exists():
        say(f"generate {options.people} people over two years to {last}")
        generate_force(folder, people=options.people, years=2, seed=1, end=last)
    path = OUT / f"load-{options.people}.sqlite"
    for leftover in OUT.glob(f"load-{options.people}.sqlite*"):
        leftover.unlink()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    say("ingest")
    for report in ingest_files(Ingestor(engine), [folder]):
        if report.outcome == "failed":
            raise SystemExit(f"{report.path}: {report.message}")
    criteria, text = load_criteria(options.rules)
    moment = step_times(last, last, "day")[0]
    say("evaluate at the end of the year")
    run_evaluation(engine, criteria, text, as_of=moment, full=True, clock=lambda: moment)
    say("backtest the year, weekly")
    with engine.connect() as conn:
        exposures = table_of(Exposure)
        tiers = conn.execute(
            sa.select(
                exposures.c.tier,
                exposures.c.category,
                sa.func.count(),
                sa.func.count(sa.distinct(exposures.c.incident_key)),
            )
            .where(exposures.c.at > opening(first), exposures.c.at <= moment)
            .group_by(exposures.c.tier, exposures.c.category)
            .order_by(exposures.c.tier.desc(), sa.func.count().desc())
        ).all()
        report = backtest(conn, load_pack(options.rules), first, last, step="week")
        conn.rollback()
    engine.dispose()
    result = {
        "force": {"people": options.people, "year": options.year},
        "ruleset": report.ruleset,
        "alerts": dict(sorted(report.alerts.items())),
        "load": report.load_figures(),
        "exposures": [
            {"tier": t, "category": c, "exposures": n, "incidents": i} for t, c, n, i in tiers
        ],
    }
    (OUT / f"load-{options.people}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
