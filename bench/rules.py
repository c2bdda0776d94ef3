"""Rule evaluation speed: the default pack over 50,000 generated snapshots, then 1% changed.

    python bench/rules.py [--people 50000] [--changed 0.01] [--db URL]

1. Full: `engine.alerts.decisions.decide` on every snapshot (durable_rules, the Python check and
   explanation, decisions, alerts, outbox rows and marks written and committed), timed.
2. Again with 1% of the snapshots changed, with the marks kept in memory from step 1 as the
   scheduler keeps them: only those may be evaluated, timed. (A new process reads the marks
   from the database first; that cold start is timed too, for information.)
3. Reference, in the same run: the same pack's conditions evaluated in plain Python
   (`conditions.holds`) on the same typed snapshots, beside the durable_rules match alone.

Targets (issue 4): step 1 under 10 s; step 2 under 0.5 s. The database defaults to a fresh
SQLite file; people exist in it so that recipients resolve from the people history.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.alerts.decisions import decide  # noqa: E402
from engine.rules import durable  # noqa: E402
from engine.rules.conditions import holds  # noqa: E402
from engine.rules.marks import Marks  # noqa: E402
from engine.rules.matching import snapshot_subjects  # noqa: E402
from engine.rules.pack import load_pack  # noqa: E402
from models import PersonVersion, table_of  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from trauma_tracker.settings import SHIPPED_RULES  # noqa: E402

AS_OF = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
ROLE_GROUPS = ("response", "neighbourhood", "cid", "pvp", "roads", "contact")


def snapshot(rng: random.Random, staff_id: str) -> dict:
    """A plausible person: most quiet, a tail with high exposure and strain."""
    points_90d = round(rng.expovariate(1 / 4), 3)
    return {
        "staff_id": staff_id,
        "trauma_points_7d": round(points_90d * rng.random() * 0.2, 3),
        "trauma_points_30d": round(points_90d * rng.random() * 0.5, 3),
        "trauma_points_90d": points_90d,
        "trauma_points_365d": round(points_90d * (2 + rng.random() * 3), 3),
        "trauma_points_5y": round(points_90d * (8 + rng.random() * 10), 3),
        "exposures_30d": rng.randint(0, 6),
        "tier3_exposures_30d": int(rng.random() < 0.03),
        "tier2plus_exposures_30d": min(int(rng.expovariate(1.5)), 6),
        "trauma_points_365d_role_percentile": round(rng.random() * 100, 1),
        "cancelled_rest_days_90d": min(int(rng.expovariate(0.8)), 10),
        "sickness_days_365d": min(int(rng.expovariate(0.15)), 120),
        "open_investigations": min(int(rng.expovariate(0.7)), 12),
        "absent_now": rng.random() < 0.04,
        "service_years": round(rng.random() * 30, 2),
        "staff_type": rng.choice(("officer", "officer", "staff", "pcso")),
        "role_group": rng.choice(ROLE_GROUPS),
        "rank_or_grade": "PC",
    }


def people_rows(count: int) -> list[dict]:
    return [
        {
            "staff_id": f"P{i:06d}",
            "valid_from": date(2015, 1, 1),
            "display_name": f"Person {i}",
            "staff_type": "officer",
            "role_group": ROLE_GROUPS[i % len(ROLE_GROUPS)],
            "unit_id": f"T{i // 12}",
            "supervisor_id": f"P{(i // 12) * 12:06d}" if i % 12 else None,
            "service_start": date(2015, 1, 1),
        }
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    scratch = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite:///{Path(scratch.name) / 'bench.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(table_of(PersonVersion).insert(), people_rows(args.people))
    pack = load_pack(SHIPPED_RULES)
    rng = random.Random(4)
    snapshots = [snapshot(rng, f"P{i:06d}") for i in range(args.people)]
    print(
        f"{args.people:,} snapshots, ruleset {pack.ruleset_hash} ({len(pack.rules)} rules), {url}"
    )

    marks = Marks()  # kept between runs, as the scheduler keeps it
    started = time.perf_counter()
    with engine.begin() as conn:
        full = decide(conn, pack, snapshots, as_of=AS_OF, marks=marks)
    full_s = time.perf_counter() - started
    assert not full.disagreements, full.disagreements[:3]
    print(
        f"full:       {full_s:6.2f} s  {args.people / full_s:9,.0f} snapshots/s  "
        f"{full.decisions:,} decisions ({full.decisions / full_s:,.0f}/s), "
        f"{full.alerts_opened:,} alerts  [target < 10 s]"
    )

    changed = rng.sample(range(args.people), int(args.people * args.changed))
    for index in changed:
        snapshots[index] = {**snapshots[index], "trauma_points_90d": rng.uniform(0, 30)}
    started = time.perf_counter()
    with engine.begin() as conn:
        again = decide(conn, pack, snapshots, as_of=AS_OF + timedelta(hours=1), marks=marks)
    again_s = time.perf_counter() - started
    assert again.people_evaluated <= len(changed), again.people_evaluated
    print(
        f"1% changed: {again_s:6.2f} s  evaluated {again.people_evaluated:,} of "
        f"{again.people:,}, {again.decisions:,} decisions  [target < 0.5 s]"
    )

    for index in changed[: len(changed) // 2]:
        snapshots[index] = {**snapshots[index], "trauma_points_90d": rng.uniform(0, 30)}
    started = time.perf_counter()
    with engine.begin() as conn:
        cold = decide(conn, pack, snapshots, as_of=AS_OF + timedelta(hours=2))
    cold_s = time.perf_counter() - started
    print(
        f"cold start: {cold_s:6.2f} s  evaluated {cold.people_evaluated:,} of {cold.people:,} "
        "(a new process: marks read from the database)"
    )

    subjects = snapshot_subjects(pack, snapshots)
    facts = [{"kind": s.kind, **s.values} for s in subjects]
    started = time.perf_counter()
    fired = durable.run(pack, facts)
    engine_s = time.perf_counter() - started
    rules = [rule for rule in pack.rules if rule.on == "snapshot"]
    started = time.perf_counter()
    python = {
        (r.id, i) for i, s in enumerate(subjects) for r in rules if holds(r.condition, s.values)
    }
    python_s = time.perf_counter() - started
    assert python == fired
    print(
        f"reference:  durable_rules match {engine_s:.2f} s ({len(facts) / engine_s:,.0f}/s); "
        f"plain Python {python_s:.2f} s ({len(facts) / python_s:,.0f}/s); "
        f"{len(fired):,} firings, identical"
    )
    engine.dispose()
    scratch.cleanup()


if __name__ == "__main__":
    main()
