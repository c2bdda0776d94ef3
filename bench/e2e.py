"""Drop-to-inbox benchmark: how long from a feed file landing in the drop folder to the
supervisor's email, with `trauma-tracker run` on PostgreSQL and the default settings.

1. A generated force the size of Avon and Somerset (5,800 in post, 5 years; cached in
   bench/out/ and shared with the other benchmarks) is ingested into a fresh PostgreSQL
   schema and evaluated once with the shipped rules; the alerts that first evaluation opens
   are marked as sent a day ago, as a service running since yesterday would have left them.
2. `trauma-tracker run` starts with the shipped rules and the default settings
   (TT_POLL_SECONDS 15, the shipped routing: quiet hours, digests), a local SMTP server
   and a local Teams webhook (trauma_tracker.sinks).
3. Ten times, one after another: a cc_incidents and a cc_deployments file with a new tier-3
   exposure (a child's death) for an officer in post are written and renamed into the drop
   folder at a random moment of the poll interval; the time until the officer's
   supervisor's email arrives is measured (and the Teams card's). Each drop is for a
   different supervisor, so no digest window holds one back.

    .venv/bin/python bench/e2e.py [--people 5800] [--years 5] [--drops 10]

Target: under 60 s. Results go to bench/out/e2e.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.evaluation import run_evaluation  # noqa: E402
from engine.ingest.batches import Ingestor  # noqa: E402
from engine.ingest.files import ingest_files  # noqa: E402
from engine.scoring.criteria import load_criteria  # noqa: E402
from models import Alert, OutboxMessage, table_of  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from trauma_tracker.settings import SHIPPED_RULES  # noqa: E402
from trauma_tracker.sinks import MailSink, TeamsSink, free_port  # noqa: E402
from trauma_tracker.synthetic import generate_force  # noqa: E402

OUT = ROOT / "bench" / "out"
END = date(2025, 11, 1)  # the other benchmarks' force, so the cached files are shared
POSTGRES_URL = os.environ.get(
    "TT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SCHEMA = "tt_bench_e2e"
TARGET_SECONDS = 60.0
POLL_SECONDS = 15.0  # the default TT_POLL_SECONDS, which the service runs with here


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def force_files(people: int, years: float) -> Path:
    folder = OUT / f"force-{people}-{years:g}y-{END.isoformat()}"
    if not (folder / "MANIFEST.json").exists():
        say(f"generating {people} people over {years:g} years into {folder}")
        generate_force(folder, people=people, years=years, seed=1, end=END)
    return folder


def fresh_schema() -> str:
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{SCHEMA}"


def prepare(url: str, folder: Path) -> dict:
    """Ingest the force, evaluate it once, and mark that evaluation's alerts sent yesterday."""
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    reports = list(ingest_files(Ingestor(engine), [folder], jobs=None))
    ingest_seconds = time.perf_counter() - started
    rows = sum(r.accepted for r in reports)
    say(f"ingested {rows:,} rows in {ingest_seconds:.0f} s")
    criteria, text = load_criteria(SHIPPED_RULES)
    started = time.perf_counter()
    report = run_evaluation(engine, criteria, text, rules_dir=SHIPPED_RULES)
    evaluate_seconds = time.perf_counter() - started
    say(
        f"evaluated {report.people:,} people in {evaluate_seconds:.0f} s: "
        f"{report.alerts_opened} alerts opened"
    )
    outbox = table_of(OutboxMessage)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.status == "pending")
            .values(status="sent", sent_at=yesterday, due_at=yesterday)
        )
    engine.dispose()
    return {
        "rows": rows,
        "ingest_seconds": round(ingest_seconds, 1),
        "evaluate_seconds": round(evaluate_seconds, 1),
        "people_evaluated": report.people,
        "first_alerts": report.alerts_opened,
    }


def officers_to_drop_for(folder: Path, count: int) -> list[dict]:
    """Officers in post whose supervisors (all different, with an email) are in post."""
    latest: dict[str, dict] = {}
    with (folder / "people.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            known = latest.get(row["staff_id"])
            if known is None or row["valid_from"] >= known["valid_from"]:
                latest[row["staff_id"]] = row
    chosen, supervisors = [], set()
    for row in latest.values():
        boss = latest.get(row["supervisor_id"] or "")
        if (
            row["staff_type"] == "officer"
            and not row["leave_date"]
            and boss is not None
            and not boss["leave_date"]
            and boss["email"]
            and boss["staff_id"] not in supervisors
        ):
            chosen.append({"staff_id": row["staff_id"], "unit_id": row["unit_id"], "boss": boss})
            supervisors.add(boss["staff_id"])
            if len(chosen) == count:
                return chosen
    raise SystemExit(f"only {len(chosen)} officers with distinct supervisors in {folder}")


def drop(folder: Path, n: int, officer: dict) -> float:
    """Write the two files beside the drop folder and rename them in; returns when."""
    now = datetime.now(UTC) - timedelta(minutes=30)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    urn = f"BENCH-{int(time.time())}-{n}"
    files = {
        f"cc_incidents_{urn}.csv": [
            [
                "incident_urn",
                "created_at",
                "closed_at",
                "opening_code",
                "closing_code",
                "qualifiers",
                "grade",
                "unit_id",
            ],
            [
                urn,
                stamp,
                "",
                "CONCERN_FOR_WELFARE",
                "SUDDEN_DEATH",
                "CHILD",
                "1",
                officer["unit_id"],
            ],
        ],
        f"cc_deployments_{urn}.csv": [
            ["incident_urn", "staff_id", "role", "arrived_at", "cleared_at"],
            [urn, officer["staff_id"], "first_on_scene", stamp, ""],
        ],
    }
    staging = folder.parent / "staging"
    staging.mkdir(exist_ok=True)
    for name, rows in files.items():
        with (staging / name).open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    dropped = time.time()
    for name in files:
        (staging / name).rename(folder / name)
    return dropped


def trim_alert(engine: sa.Engine, staff_id: str) -> int | None:
    alerts = table_of(Alert)
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(alerts.c.id)).where(
                alerts.c.staff_id == staff_id, alerts.c.rule_id == "trim-check"
            )
        ).scalar()


def wait_for(check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5800)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--drops", type=int, default=10)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    folder = force_files(args.people, args.years)
    url = fresh_schema()
    setup = prepare(url, folder)
    officers = officers_to_drop_for(folder, args.drops)

    work = Path(tempfile.mkdtemp(prefix="tt-bench-e2e-"))
    drop_dir = work / "drop"
    drop_dir.mkdir()
    mail, teams = MailSink().start(), TeamsSink().start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TT_")},
        "TT_DATABASE_URL": url,
        "TT_DROP_DIRS": str(drop_dir),
        "TT_SMTP_URL": mail.url,
        "TT_EMAIL_FROM": "trauma-tracker@force.example",
        "TT_TEAMS_WEBHOOK_URL": teams.url,
        "TT_BASE_URL": f"http://127.0.0.1:{port}",
        "TT_SECRET_KEY": "bench key, long enough to sign cookies",
    }
    log = work / "run.log"
    with log.open("ab") as handle:
        service = subprocess.Popen(
            [sys.executable, "-m", "trauma_tracker", "run", "--port", str(port)],
            stdout=handle,
            stderr=handle,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    engine = make_engine(url)
    results = []
    try:

        def evaluated_once():
            return '"message": "evaluated"' in log.read_text(errors="replace")

        if not wait_for(evaluated_once, 600):
            raise SystemExit(f"the service did not start: see {log}")
        say("service running; dropping files")
        # Files arrive whenever the force's systems write them, not just after a poll: each
        # drop waits a random part of the poll interval first (seeded), so the drops sample
        # every phase of the poll rather than all landing just after one.
        phase = random.Random(1)
        for n, officer in enumerate(officers, 1):
            boss = officer["boss"]["email"]
            time.sleep(phase.uniform(0, POLL_SECONDS))
            dropped = drop(drop_dir, n, officer)
            got = wait_for(
                lambda b=boss, t=dropped: [m for m in mail.mails if b in m.to and m.received > t],
                300,
            )
            if not got:
                raise SystemExit(f"drop {n}: no email to the supervisor in 300 s; see {log}")
            inbox = got[0].received - dropped
            alert = trim_alert(engine, officer["staff_id"])
            card = wait_for(
                lambda a=alert, t=dropped: [
                    p for p in teams.posts if p.received > t and f"/alerts/{a}" in str(p.body)
                ],
                60,
            )
            teams_seconds = card[0].received - dropped if card else None
            results.append(
                {
                    "drop": n,
                    "inbox_seconds": round(inbox, 2),
                    "teams_seconds": (
                        round(teams_seconds, 2) if teams_seconds is not None else None
                    ),
                }
            )
            say(f"drop {n}: email after {inbox:.1f} s, Teams after {teams_seconds or 0:.1f} s")
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
        mail.stop()
        teams.stop()
        engine.dispose()

    inbox = [r["inbox_seconds"] for r in results]
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "force": {"people": args.people, "years": args.years, **setup},
        "settings": "defaults (TT_POLL_SECONDS 15, shipped rules and routing)",
        "drops": results,
        "median_seconds": round(statistics.median(inbox), 2),
        "worst_seconds": round(max(inbox), 2),
        "target_seconds": TARGET_SECONDS,
    }
    (OUT / "e2e.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(
        f"drop to inbox: median {summary['median_seconds']} s, worst "
        f"{summary['worst_seconds']} s (target under {TARGET_SECONDS:g} s)"
    )


if __name__ == "__main__":
    main()
