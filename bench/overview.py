"""Overview benchmark: `GET /api/v1/aggregates?by=team` under 20 concurrent clients, and the
backtest of the default rule pack over one year of daily snapshots, on SQLite and PostgreSQL.

On bench/web.py's database (the generated force the size of Avon and Somerset over five
years, ingested and evaluated once with the shipped rules at the force's last day, and kept),
served by gunicorn as bench/web.py serves it (the clock fixed at the last day). The clients
are leaders picked at random, each with a dev bearer token holding the `leader` role.

1. Cold: one client, the figures worked out afresh each time (`aggregates.overview`), in
   process: what the first request after an ingest or an evaluation costs.
2. Under load: 20 clients at once through gunicorn; the figures are worked out once and
   reused while nothing they read changes (`aggregates.current_overview`), as in service.
3. The backtest (`engine.rules.backtest`, `rules backtest --step day`): the shipped pack
   over the year before the last day, each day's snapshots computed as they were then.

    .venv/bin/python bench/overview.py [--requests 30] [--clients 20] [--days 365]
        [--skip-postgres] [--skip-backtest | --only-backtest]

Targets (issue 12): p95 under 800 ms for step 2; step 3 under 60 s. Results go to
bench/out/overview.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scoring import OUT, say, timed  # noqa: E402
from bench.web import (  # noqa: E402
    AS_OF,
    force_folder,
    percentile,
    postgres_url,
    run_load,
    served_app,
    sqlite_url,
    start_server,
    stop_server,
)
from engine.oversight.aggregates import overview  # noqa: E402
from engine.rules.backtest import backtest  # noqa: E402
from engine.rules.pack import load_pack  # noqa: E402
from engine.sqltime import local_date  # noqa: E402
from models.db import make_engine  # noqa: E402
from trauma_tracker.settings import SHIPPED_RULES  # noqa: E402

PATH = "/api/v1/aggregates?by=team"
TARGET_P95_MS = 800
TARGET_BACKTEST_S = 60


def leader_tokens(url: str, count: int) -> dict[str, str]:
    """Dev bearer tokens for `count` people in post, each holding the leader role."""
    from web.auth import make_dev_token

    engine = make_engine(url)
    with engine.connect() as conn:
        staff = sorted(conn.execute(sa.text("SELECT DISTINCT staff_id FROM people")).scalars())
    engine.dispose()
    chosen = random.Random(11).sample(staff, min(count, len(staff)))
    os.environ["TT_BENCH_WEB_DB"] = url
    app = served_app()
    with app.app_context():
        tokens = {s: make_dev_token(s, ["leader"]) for s in chosen}
    app.extensions["tt"].dispose()
    return tokens


def cold(url: str, rounds: int = 5) -> dict:
    engine = make_engine(url)
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        view = overview(engine, AS_OF, trend=False)
        seconds.append(time.perf_counter() - started)
    rows = view.rows("team")
    cells = view.hierarchy.cells.values()
    engine.dispose()
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "teams": len(rows),
        "teams_suppressed": sum(row["suppressed"] for row in rows),
        "cells": len(view.hierarchy.cells),
        "primary": sum(cell.reason == "primary" for cell in cells),
        "secondary": sum(cell.reason == "secondary" for cell in cells),
        "people": view.total()["people"],
    }


def under_load(url: str, options) -> dict:
    tokens = leader_tokens(url, 100)
    server, base = start_server(url)

    def load():
        return run_load(base, PATH, list(tokens), tokens, options.clients, options.requests)

    try:
        timed("warming up (unmeasured, as bench/web.py)", load)
        (timings, failures), seconds = timed(
            f"{PATH}: {options.clients} clients x {options.requests} requests", load
        )
    finally:
        stop_server(server)
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    latencies = [ms for _, ms in timings]  # run_load gives (asker, ms)
    p95 = percentile(latencies, 0.95)
    return {
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(max(latencies), 1),
        "per_second": round(len(latencies) / seconds, 1),
        "target_p95_ms": TARGET_P95_MS,
        "met": p95 < TARGET_P95_MS,
    }


def run_backtest(url: str, days: int) -> dict:
    engine = make_engine(url)
    pack = load_pack(SHIPPED_RULES)
    end = local_date(AS_OF)
    start = end - timedelta(days=days - 1)
    with engine.connect() as conn:
        report, seconds = timed(
            f"backtest of the shipped pack, {start} to {end}, daily",
            lambda: backtest(conn, pack, start, end, step="day"),
        )
    engine.dispose()
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "steps": report.steps,
        "alerts": sum(report.alerts.values()),
        "alerts_by_rule": dict(sorted(report.alerts.items())),
        "seconds": round(seconds, 1),
        "per_step_ms": round(seconds / report.steps * 1000, 1),
        "target_s": TARGET_BACKTEST_S,
        "met": seconds < TARGET_BACKTEST_S if days >= 365 else None,
    }


def bench_database(name: str, url: str, options) -> dict:
    say(f"--- {name}")
    result = {}
    if not options.only_backtest:
        result["cold"] = cold(url)
        say(f"  cold, one client: {result['cold']}")
        result["load"] = under_load(url, options)
        say(f"  under load: {result['load']}")
    if not options.skip_backtest:
        result["backtest"] = run_backtest(url, options.days)
        say(f"  backtest: {result['backtest']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5800)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--requests", type=int, default=30, help="per client")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--days", type=int, default=365, help="backtest length")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--only-backtest", action="store_true", help="skip steps 1 and 2")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder = force_folder(options.people, options.years)
    results: dict = {
        "force": {"people": options.people, "years": options.years, "as_of": AS_OF.isoformat()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "clients": options.clients,
        "databases": {},
    }
    if not options.skip_sqlite:
        results["databases"]["sqlite"] = bench_database("sqlite", sqlite_url(folder), options)
    if not options.skip_postgres:
        results["databases"]["postgresql"] = bench_database(
            "postgresql", postgres_url(folder), options
        )
    written = OUT / "overview.json"
    if written.exists():  # a partial run keeps the last results of what it skipped
        merged = json.loads(written.read_text()).get("databases", {})
        for name, result in results["databases"].items():
            merged[name] = {**merged.get(name, {}), **result}
        results["databases"] = merged
    written.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
