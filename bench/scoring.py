"""Scoring benchmark: full rescore, one-day incremental update, and DuckDB for comparison.

On a generated force the size of Avon and Somerset over five years (about 5,800 in post,
8,000 people over the period, 4.9 million feed rows), for SQLite and PostgreSQL:

1. the feeds as known the day before the end are ingested (not timed here: bench/ingest.py);
2. `evaluate --full` at that moment: every exposure rescored and everyone snapshotted
   (target: under 60 s);
3. the last day's new and changed records are ingested, then an incremental `evaluate` a day
   later (target: under 2 s), checked against `evaluate --full` at the same moment: exposures
   and current snapshots must be identical;
4. DuckDB computes the same per-person windowed points straight from the CSV files, as an
   analyst with a BI tool would; they must agree exactly, and the time ratio is reported.

    .venv/bin/python bench/scoring.py [--people 5800] [--years 5] [--skip-postgres]

Results go to bench/out/scoring.json. The generated force is cached in bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feedsplit import changes_between, known_at  # noqa: E402
from engine.evaluation import run_evaluation  # noqa: E402
from engine.ingest.batches import Ingestor  # noqa: E402
from engine.ingest.files import ingest_files  # noqa: E402
from engine.scoring.criteria import load_criteria  # noqa: E402
from engine.scoring.indicators import SNAPSHOT_FIELDS, WINDOWS  # noqa: E402
from engine.scoring.snapshots import snapshot_state  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from tests.duckdb_oracle import duckdb_points  # noqa: E402
from trauma_tracker.synthetic import generate_force  # noqa: E402

OUT = ROOT / "bench" / "out"
END = date(2025, 11, 1)
POSTGRES_URL = os.environ.get(
    "TT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SCHEMA = "tt_bench_scoring"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(label: str, action):
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    say(f"{label}: {seconds:.2f} s")
    return result, seconds


def prepare_feeds(people: int, years: float) -> tuple[Path, Path, Path, datetime, datetime]:
    """The generated force, the feeds as known a day before its end, and the last day."""
    folder = OUT / f"force-{people}-{years:g}y-{END.isoformat()}"
    if not (folder / "MANIFEST.json").exists():
        timed(
            f"generate {people} people over {years:g} years",
            lambda: generate_force(folder, people=people, years=years, seed=1, end=END),
        )
    end = datetime(END.year, END.month, END.day, tzinfo=UTC)
    cut = end - timedelta(days=1)
    base, day = folder.with_name(folder.name + "-base"), folder.with_name(folder.name + "-day")
    if not (base / "units.csv").exists():
        timed("feeds as known a day before the end", lambda: known_at(folder, base, cut))
        rows, _ = timed("the last day's changes", lambda: changes_between(folder, day, cut, end))
        say(f"  {rows:,} rows new or changed on the last day")
    return folder, base, day, cut, end


def ingest(engine: sa.Engine, folder: Path) -> int:
    rows = 0
    for report in ingest_files(Ingestor(engine), [folder], jobs=None):
        if report.outcome == "failed":
            raise SystemExit(f"{report.path}: {report.message}")
        rows += report.rows
    return rows


def postgres_engine() -> sa.Engine:
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.dispose()
    return make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{SCHEMA}")


def exposures_state(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(
            tuple(row)
            for row in conn.execute(
                sa.text(
                    "SELECT staff_id, incident_key, feed, ref, role, category, tier, points "
                    "FROM exposures"
                )
            )
        )


def run_database(name: str, engine: sa.Engine, base: Path, day: Path, cut, end, criteria):
    say(f"--- {name}")
    migrate(engine)
    rows, ingest_base = timed(
        "ingest the feeds as known a day before the end", lambda: ingest(engine, base)
    )
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load; the planner needs the statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in sa.inspect(conn).get_table_names():
                conn.execute(sa.text(f'ANALYZE "{table}"'))
    criteria_model, text = criteria
    first, full_cold = timed(
        "evaluate --full (cold)",
        lambda: run_evaluation(engine, criteria_model, text, as_of=cut, full=True),
    )
    again, full_warm = timed(
        "evaluate --full (again)",
        lambda: run_evaluation(engine, criteria_model, text, as_of=cut, full=True),
    )
    day_rows, ingest_day = timed("ingest the last day", lambda: ingest(engine, day))
    incremental, incremental_seconds = timed(
        "evaluate, incremental, one day later",
        lambda: run_evaluation(engine, criteria_model, text, as_of=end),
    )
    after_incremental = (exposures_state(engine), snapshot_state(engine))
    full_end, full_end_seconds = timed(
        "evaluate --full at the same moment",
        lambda: run_evaluation(engine, criteria_model, text, as_of=end, full=True),
    )
    agree = after_incremental == (exposures_state(engine), snapshot_state(engine))
    say(f"incremental equals full: {agree}")
    return {
        "feed_rows": rows,
        "ingest_base_s": round(ingest_base, 2),
        "people": first.people,
        "exposures": first.exposures,
        "full_rescore_and_snapshot_s": round(full_cold, 2),
        "full_rescore_and_snapshot_again_s": round(full_warm, 2),
        "last_day_rows": day_rows,
        "ingest_last_day_s": round(ingest_day, 2),
        "incremental_one_day_s": round(incremental_seconds, 2),
        "incremental_groups_rescored": incremental.groups_rescored,
        "incremental_snapshots_written": incremental.snapshots_written,
        "full_at_same_moment_s": round(full_end_seconds, 2),
        "incremental_equals_full": agree,
        "snapshots": snapshot_state(engine),
    }


def compare_with_duckdb(snapshots: dict[str, tuple], analyst: dict[str, dict]) -> int:
    """How many person-window figures differ (0 means exact agreement on every person)."""
    position = {name: i for i, name in enumerate(SNAPSHOT_FIELDS)}
    differences = 0
    for staff, figures in snapshots.items():
        theirs = analyst.get(staff, {})
        for window in WINDOWS:
            ours_points = figures[position[f"trauma_points_{window}"]]
            ours_count = figures[position[f"exposures_{window}"]]
            if ours_points != theirs.get(f"points_{window}", 0.0):
                differences += 1
            if ours_count != theirs.get(f"exposures_{window}", 0):
                differences += 1
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5800)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder, base, day, cut, end = prepare_feeds(options.people, options.years)
    criteria = load_criteria(ROOT / "rules")
    history = WINDOWS["5y"]

    analyst, duckdb_seconds = timed(
        "DuckDB from the CSV files: windowed points per person",
        lambda: duckdb_points(folder, criteria[0], end, history),
    )
    results: dict = {
        "force": {"people": options.people, "years": options.years, "end": END.isoformat()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "duckdb_s": round(duckdb_seconds, 2),
        "databases": {},
    }
    targets = []
    if not options.skip_sqlite:
        path = OUT / "scoring.sqlite"
        for leftover in OUT.glob("scoring.sqlite*"):
            leftover.unlink()
        targets.append(("sqlite", make_engine(f"sqlite:///{path}")))
    if not options.skip_postgres:
        targets.append(("postgresql", postgres_engine()))
    for name, engine in targets:
        result = run_database(name, engine, base, day, cut, end, criteria)
        snapshots = result.pop("snapshots")
        result["duckdb_differences"] = compare_with_duckdb(snapshots, analyst)
        result["ratio_full_to_duckdb"] = round(
            result["full_rescore_and_snapshot_s"] / duckdb_seconds, 2
        )
        result["ratio_incremental_to_duckdb"] = round(
            result["incremental_one_day_s"] / duckdb_seconds, 3
        )
        say(f"DuckDB differences on {name}: {result['duckdb_differences']}")
        results["databases"][name] = result
        engine.dispose()
    (OUT / "scoring.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
