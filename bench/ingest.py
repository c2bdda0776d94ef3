"""Ingest speed on an Avon-and-Somerset-sized force, against this machine's raw insert rate.

    python bench/ingest.py [--people 5800] [--years 5] [--databases sqlite,postgresql]
                           [--rounds N] [--jobs N]

Generates the force once (kept in bench/out/force-*), then for each database: a fresh
schema, `trauma-tracker ingest` of every file (validation, quarantine, upsert by natural
key), timed; and in the same run the raw rate: the same files read with csv.reader and
their rows inserted unvalidated into a bare table with no keys (executemany on SQLite,
COPY on PostgreSQL), which is as fast as one connection loads these rows at all.

Targets (issue 2): ingest >= 50% of the raw rate, and the whole load under 120 s.

The machine's speed drifts by a third from minute to minute, moving both figures, so with
`--rounds N` each database gets N raw loads and N ingests, alternating, and the fastest of
each counts. Ingest works on several files at once (`--jobs`, as the CLI's default): on
PostgreSQL it stores several feeds side by side; on SQLite other processes check and stage
the next files while one is stored. The raw load is one connection in one process.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.ingest.batches import Ingestor  # noqa: E402
from engine.ingest.feeds import feed_for_filename  # noqa: E402
from engine.ingest.files import default_jobs, expand_paths, ingest_files  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from trauma_tracker.synthetic import generate_force  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
END = date(2025, 12, 31)  # fixed, so every run measures the same force


def force_dir(people: int, years: float, seed: int) -> Path:
    folder = ROOT / "bench" / "out" / f"force-{people}p-{years:g}y-s{seed}"
    if not (folder / "MANIFEST.json").exists():
        started = time.perf_counter()
        generate_force(folder, people=people, years=years, seed=seed, end=END)
        print(f"generated {folder.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def database(kind: str, postgres_url: str, scratch: Path):
    """A fresh, migrated database of `kind`; returns (engine, cleanup)."""
    if kind == "sqlite":
        path = scratch / "bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        return engine, lambda: engine.dispose()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{postgres_url}?options=-csearch_path%3D{schema}")
    migrate(engine)

    def cleanup():
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return engine, cleanup


def raw_load(engine: sa.Engine, files: list[Path]) -> tuple[int, float]:
    """Rows per second of the plainest load: csv.reader into a bare table, no checks."""
    rows = 0
    started = time.perf_counter()
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        for n, path in enumerate(files):
            with path.open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                table = f"raw_{n}"
                columns = ", ".join(f"c{i} text" for i in range(len(header)))
                conn.exec_driver_sql(f"CREATE TABLE {table} ({columns})")
                if engine.dialect.name == "sqlite":
                    marks = ", ".join("?" for _ in header)
                    cursor = driver.cursor()
                    cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", reader)
                    rows += cursor.rowcount
                    cursor.close()
                else:
                    with driver.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as c:
                        for row in reader:
                            c.write_row(row)
                            rows += 1
    return rows, time.perf_counter() - started


def ingest_load(engine: sa.Engine, files: list[Path], jobs: int | None) -> tuple[int, float]:
    rows = 0
    started = time.perf_counter()
    for report in ingest_files(Ingestor(engine), files, jobs=jobs):
        if report.outcome != "ok":
            raise SystemExit(f"{report.path}: {report.outcome}: {report.message}")
        rows += report.rows
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5800)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--jobs", type=int, help="as `ingest --jobs` (default: as the CLI, for each database)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="raw and ingest loads per database, alternating; the fastest of each counts",
    )
    parser.add_argument(
        "--postgres-url", default=os.environ.get("TT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args()

    folder = force_dir(args.people, args.years, args.seed)
    files = expand_paths([folder])
    csv_files = [p for p in files if p.suffix == ".csv" and feed_for_filename(p.name)]
    print(f"{len(csv_files)} files, {sum(p.stat().st_size for p in csv_files) / 1e6:.0f} MB")
    results = []
    for kind in args.databases.split(","):
        raw_times, ingest_times = [], []
        for _ in range(args.rounds):
            engine, cleanup = database(kind, args.postgres_url, folder.parent)
            try:
                raw_rows, raw_seconds = raw_load(engine, csv_files)
                rows, seconds = ingest_load(engine, csv_files, args.jobs)
            finally:
                cleanup()
            assert rows == raw_rows, (rows, raw_rows)
            raw_times.append(round(raw_seconds, 1))
            ingest_times.append(round(seconds, 1))
        # The fastest of each: what the machine can do when nothing else gets in the way.
        raw_seconds, seconds = min(raw_times), min(ingest_times)
        result = {
            "database": kind,
            "jobs": args.jobs or default_jobs(kind),
            "rows": rows,
            "raw_rounds_s": raw_times,
            "ingest_rounds_s": ingest_times,
            "ingest_seconds": round(seconds, 1),
            "ingest_rows_per_s": round(rows / seconds),
            "raw_seconds": round(raw_seconds, 1),
            "raw_rows_per_s": round(raw_rows / raw_seconds),
        }
        result["ratio"] = round(result["ingest_rows_per_s"] / result["raw_rows_per_s"], 2)
        result["meets_targets"] = result["ratio"] >= 0.5 and seconds < 120
        results.append(result)
        print(json.dumps(result), flush=True)

    print()
    print("| database | rows | ingest | ingest rows/s | raw rows/s | ingest / raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['database']} | {r['rows']:,} | {r['ingest_seconds']} s "
            f"| {r['ingest_rows_per_s']:,} | {r['raw_rows_per_s']:,} | {r['ratio']:.0%} |"
        )
    out = ROOT / "bench" / "out" / "ingest.json"
    out.write_text(json.dumps({"people": args.people, "years": args.years, "results": results}))
    if not all(r["meets_targets"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
