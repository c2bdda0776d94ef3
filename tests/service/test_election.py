"""One active scheduler per database, with real processes."""

from __future__ import annotations

import signal

import pytest

from tests.service.processes import start, stop, wait_for_log


def _scheduler(url, rules_dir, log):
    return start(["--db", url, "--rules", str(rules_dir), "scheduler"], log)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_standby_takes_over_when_the_active_scheduler_is_killed(
    postgres_schema_url, rules_dir, tmp_path
):
    from models.db import make_engine, migrate

    engine = make_engine(postgres_schema_url)
    migrate(engine)
    engine.dispose()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _scheduler(postgres_schema_url, rules_dir, first_log)
    second = None
    try:
        wait_for_log(first_log, "scheduler active")
        second = _scheduler(postgres_schema_url, rules_dir, second_log)
        wait_for_log(second_log, "standby: another instance holds the scheduler lock")

        first.send_signal(signal.SIGKILL)
        first.wait()

        # Within a minute (it tries every few seconds; the server ends the dead session).
        wait_for_log(second_log, "scheduler active", seconds=60)
        assert stop(second) == 0
        wait_for_log(second_log, "scheduler stopped")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_on_sqlite_a_second_scheduler_says_so_and_exits(tmp_path, rules_dir):
    from models.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _scheduler(url, rules_dir, first_log)
    try:
        wait_for_log(first_log, "scheduler active")
        second = _scheduler(url, rules_dir, second_log)
        assert second.wait(timeout=60) == 1
        text = second_log.read_text()
        assert "another scheduler is already running against this SQLite database" in text
        assert f"process {first.pid}" in text
        assert first.poll() is None  # the first one carries on
        assert stop(first) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
