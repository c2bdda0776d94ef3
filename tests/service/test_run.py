"""`run` as a supervisor: when either of its processes stops by itself, it stops the other
and exits non-zero, so systemd restarts the whole service."""

from __future__ import annotations

import socket

import pytest

from models.db import make_engine, migrate
from tests.service.processes import log_lines, start, wait_for_log
from trauma_tracker.sinks import free_port


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _run(url, rules_dir, log, port):
    return start(
        ["run", "--port", str(port)],
        log,
        TT_DATABASE_URL=url,
        TT_RULES_DIR=str(rules_dir),
        TT_SECRET_KEY="run test key, long enough",
    )


@pytest.mark.slow
def test_when_the_web_server_cannot_start_run_stops_the_scheduler_and_fails(
    sqlite_url, rules_dir, tmp_path
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "run.log"
        service = _run(sqlite_url, rules_dir, log, port)
        code = service.wait(timeout=120)
    assert code != 0
    stopped = [line for line in log_lines(log) if line.get("message") == "child stopped"]
    assert stopped[0]["child"] == "web"
    [ended] = [line for line in log_lines(log) if line.get("message") == "stopped"]
    assert ended["scheduler"] == 0  # stopped by run, cleanly


@pytest.mark.slow
def test_a_second_run_on_one_sqlite_database_says_so_and_exits(sqlite_url, rules_dir, tmp_path):
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _run(sqlite_url, rules_dir, first_log, free_port())
    try:
        wait_for_log(first_log, "scheduler active")
        second = _run(sqlite_url, rules_dir, second_log, free_port())
        assert second.wait(timeout=120) == 1
        assert "another scheduler is already running" in second_log.read_text()
        assert first.poll() is None
    finally:
        first.terminate()
        assert first.wait(timeout=120) == 0
