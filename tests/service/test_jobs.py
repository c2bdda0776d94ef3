"""The scheduler's jobs, run one at a time on both databases."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from engine.oversight import service_runs
from models import Alert, OutboxMessage, table_of
from tests.service.drops import (
    OFFICER,
    PRIVATE_WORDS,
    SUPERVISOR,
    settle,
    write_exposure,
    write_team,
)
from trauma_tracker import logging_setup
from trauma_tracker.jobs import Jobs


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


def test_intake_moves_files_evaluates_and_queues_the_supervisors_notifications(
    settings, service_db, drop_dir
):
    _, engine = service_db
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-9")
    jobs = Jobs(settings, engine)

    assert jobs.intake() is True

    assert sorted(p.name for p in drop_dir.iterdir()) == ["processed"]
    assert len(list((drop_dir / "processed").iterdir())) == 4
    alerts = table_of(Alert)
    with engine.connect() as conn:
        opened = conn.execute(sa.select(alerts.c.staff_id, alerts.c.rule_id)).all()
    assert (OFFICER, "trim-check") in opened
    outbox = table_of(OutboxMessage)
    assert _count(engine, outbox, outbox.c.recipient == SUPERVISOR) >= 1
    with engine.connect() as conn:
        recorded = {row["name"]: row for row in service_runs.runs(conn)}
    assert recorded["evaluate"]["last_success_at"] is not None
    assert recorded[f"source:{drop_dir}"]["kind"] == "source"
    assert recorded[f"source:{drop_dir}"]["last_success_at"] is not None


def test_a_second_intake_of_the_same_files_changes_nothing(settings, service_db, drop_dir):
    _, engine = service_db
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-9")
    jobs = Jobs(settings, engine)
    jobs.intake()
    alerts = _count(engine, table_of(Alert))
    for path in (drop_dir / "processed").iterdir():  # the force's system sends them again
        path.rename(drop_dir / path.name)

    jobs.intake()

    assert _count(engine, table_of(Alert)) == alerts
    assert not jobs.changed.is_set()
    assert sorted(p.name for p in drop_dir.iterdir()) == ["processed"]
    assert len(list((drop_dir / "processed").iterdir())) == 4


def test_a_file_that_cannot_be_read_goes_to_failed_and_the_rest_are_ingested(
    settings, service_db, drop_dir
):
    _, engine = service_db
    write_team(drop_dir)
    broken = drop_dir / "cc_incidents_bad.csv"
    broken.write_text("not,a,header\n1,2,3\n")
    settle(broken)

    jobs = Jobs(settings, engine)
    jobs.intake()

    assert (drop_dir / "failed" / "cc_incidents_bad.csv").exists()
    assert (drop_dir / "failed" / "cc_incidents_bad.csv.reason.txt").exists()
    assert {p.name for p in (drop_dir / "processed").iterdir()} == {"units.csv", "people.csv"}


def test_a_file_still_being_written_waits_for_the_next_poll(settings, service_db, drop_dir):
    """As `ingest --move`: a file that changes while intake looks at it is left alone."""
    _, engine = service_db
    units = drop_dir / "units.csv"
    units.write_text("unit_id,parent_id,level,name\nF,,force,Force\n")
    writing = threading.Event()

    def writer() -> None:  # another system still writing the file, a row at a time
        for number in range(30):
            with units.open("a") as out:
                out.write(f"T{number},F,team,Team {number}\n")
            writing.set()
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    writing.wait()
    try:
        assert Jobs(settings, engine).intake() is False
    finally:
        thread.join()

    assert units.exists() and not (drop_dir / "processed").exists()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar_one() == 0


def test_a_failing_job_is_logged_with_its_traceback_recorded_and_runs_again(
    settings, service_db, caplog
):
    _, engine = service_db
    jobs = Jobs(settings, engine)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the share is away")
        return True

    run = jobs.guarded("intake", flaky)
    with caplog.at_level(logging.ERROR, logger="trauma_tracker.jobs"):
        run()  # does not raise
    [record] = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert record.exc_info and "the share is away" in str(record.exc_info[1])
    with engine.connect() as conn:
        [failed] = [r for r in service_runs.runs(conn) if r["name"] == "intake"]
    assert failed["failures"] == 1 and failed["last_success_at"] is None
    assert failed["last_error"] == "RuntimeError: the share is away"

    run()

    with engine.connect() as conn:
        [recovered] = [r for r in service_runs.runs(conn) if r["name"] == "intake"]
    assert recovered["failures"] == 0 and recovered["last_success_at"] is not None


def test_a_drop_folder_that_vanished_is_a_failure_of_its_source(settings, service_db, drop_dir):
    _, engine = service_db
    drop_dir.rmdir()
    run = Jobs(settings, engine).guarded("intake", Jobs(settings, engine).intake)

    run()

    with engine.connect() as conn:
        recorded = {r["name"]: r for r in service_runs.runs(conn)}
    assert "does not exist" in recorded[f"source:{drop_dir}"]["last_error"]
    assert recorded["intake"]["failures"] == 1


def test_log_lines_are_json_with_ids_and_counts_only(settings, service_db, drop_dir, capsys):
    _, engine = service_db
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-9")
    handler = logging_setup.configure("INFO")
    try:
        jobs = Jobs(settings, engine)
        jobs.guarded("intake", jobs.intake)()
    finally:
        logging.getLogger().removeHandler(handler)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    messages = [line["message"] for line in lines]
    assert messages.count("file ingested") == 4
    assert "evaluated" in messages
    evaluated = next(line for line in lines if line["message"] == "evaluated")
    assert evaluated["alerts_opened"] >= 1 and evaluated["level"] == "INFO"
    text = "\n".join(json.dumps(line) for line in lines)
    for word in PRIVATE_WORDS:
        assert word not in text


def test_scheduler_health_fails_when_intake_or_dispatch_goes_stale(service_db):
    _, engine = service_db
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with engine.connect() as conn:
        assert service_runs.scheduler_health(conn, start)["ok"] is True  # never run
    service_runs.record_start(engine, "scheduler", "scheduler", start, "host:1")
    service_runs.record_success(engine, "scheduler", "scheduler", start, "host:1")
    service_runs.record_success(engine, "dispatch", "job", start, "host:1")
    service_runs.record_failure(engine, "intake", "job", start, "host:1", "OSError: away")

    soon = start + timedelta(minutes=5)
    service_runs.record_success(engine, "scheduler", "scheduler", soon, "host:1")
    with engine.connect() as conn:
        assert service_runs.scheduler_health(conn, soon)["ok"] is True  # within 10 minutes

    later = start + timedelta(minutes=11)
    service_runs.record_success(engine, "scheduler", "scheduler", later, "host:1")
    service_runs.record_success(engine, "dispatch", "job", later, "host:1")
    with engine.connect() as conn:
        health = service_runs.scheduler_health(conn, later)
    assert health["ok"] is False
    assert health["problems"] == [
        "intake has not succeeded since 2026-01-05T09:00:00Z (1 failures in a row)"
    ]
    with engine.connect() as conn:
        dead = service_runs.scheduler_health(conn, later + timedelta(minutes=30))
    assert dead["problems"][0].startswith("no active scheduler since")


def test_with_the_database_away_the_files_wait_in_the_drop_folder(tmp_path, rules_dir, drop_dir):
    from models.db import make_engine
    from trauma_tracker.settings import Settings

    away = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"  # nothing there
    settings = Settings(database_url=away, rules_dir=rules_dir, drop_dirs=(drop_dir,))
    engine = make_engine(away)
    written = write_team(drop_dir)
    jobs = Jobs(settings, engine)

    jobs.guarded("intake", jobs.intake)()  # logged, not raised

    assert sorted(drop_dir.iterdir()) == sorted(written)  # none moved to failed/
    engine.dispose()


def test_the_scheduler_moves_a_link_aside_without_reading_what_it_points_at(
    settings, service_db, drop_dir, tmp_path
):
    """The service's intake is `ingest --move`'s: a link in the drop folder is never followed."""
    _, engine = service_db
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("unit_id,parent_id,level,name\nF,,force,Secret Force Name\n")
    settle(outside)
    link = drop_dir / "units.csv"
    link.symlink_to(outside)

    Jobs(settings, engine).intake()

    assert not link.is_symlink() and (drop_dir / "failed" / "units.csv").is_symlink()
    reason = (drop_dir / "failed" / "units.csv.reason.txt").read_text()
    assert "link" in reason and "Secret Force Name" not in reason
    assert outside.read_text().endswith("Secret Force Name\n")  # the target is left alone
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar_one() == 0
