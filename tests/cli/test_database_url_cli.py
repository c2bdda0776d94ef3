"""A database URL that can't be used, or a database that can't be reached: one line, exit 2,
no traceback and no password (issue 15 section 4); a SQLite file only its owner can read."""

from __future__ import annotations

import os
import socket
import stat

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from models.db import DatabaseError, make_engine, migrate, require_current
from trauma_tracker.cli import main

PASSWORD = "pa55-word"


def refused_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nobody listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trauma-tracker: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def urls(postgres: str | None) -> list[tuple[str, str]]:
    port = refused_port()
    cases = [
        (f"postgresql+psycopg://tracker:{PASSWORD}@db@127.0.0.1:{port}/tt", "unencoded '@'"),
        (f"postgresql+psycopg://tracker:{PASSWORD}@127.0.0.1:{port}/tt", "Connection refused"),
        (f"nosuchdb://tracker:{PASSWORD}@127.0.0.1/tt", "unknown dialect 'nosuchdb'"),
        (f"mssql+pyodbc://tracker:{PASSWORD}@127.0.0.1/tt", "No module named 'pyodbc'"),
        (f"tracker:{PASSWORD} at the database server", "can't be read (expected dialect+"),
        (f"postgresql+psycopg://tracker:{PASSWORD}@127.0.0.1/tt\n", "control character"),
    ]
    if postgres:
        missing = sa.engine.make_url(postgres).set(database="d_no_such_database", password=PASSWORD)
        url = missing.render_as_string(hide_password=False)
        cases.append((url, 'database "d_no_such_database" does not exist'))
    return cases


@pytest.fixture(scope="module")
def postgres() -> str | None:
    from tests.conftest import _postgres_url, postgres_available

    return _postgres_url() if postgres_available(_postgres_url()) else None


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize("command", [["alerts"], ["exposure", "S1"]])
def test_a_database_that_cant_be_used_is_one_line_without_the_password(postgres, index, command):
    cases = urls(postgres)
    if index >= len(cases):
        pytest.skip("PostgreSQL is not reachable for the missing-database case")
    url, words = cases[index]

    result = CliRunner().invoke(main, ["--db", url, *command])

    line = one_line(result)
    assert words in line
    assert PASSWORD not in line and "db@127" not in line


def test_tt_database_url_is_checked_as_strictly_as_db(monkeypatch):
    monkeypatch.setenv("TT_DATABASE_URL", f"postgresql+psycopg://t:{PASSWORD}@x@127.0.0.1/tt")
    line = one_line(CliRunner().invoke(main, ["alerts"]))
    assert "TT_DATABASE_URL" in line and "unencoded '@'" in line and PASSWORD not in line


def test_init_on_a_refused_port_is_one_line_without_the_password():
    url = f"postgresql+psycopg://tracker:{PASSWORD}@127.0.0.1:{refused_port()}/tt"
    line = one_line(CliRunner().invoke(main, ["--db", url, "init"]))
    assert "can't connect to postgresql+psycopg://tracker:***@127.0.0.1:" in line
    assert PASSWORD not in line


def test_make_engine_and_require_current_raise_database_error():
    with pytest.raises(DatabaseError, match="unencoded '@'"):
        make_engine(f"postgresql+psycopg://t:{PASSWORD}@x@127.0.0.1/tt")
    engine = make_engine(f"postgresql+psycopg://t:{PASSWORD}@127.0.0.1:{refused_port()}/tt")
    with pytest.raises(DatabaseError) as raised:
        require_current(engine)
    assert PASSWORD not in str(raised.value) and "Connection refused" in str(raised.value)


def test_a_new_sqlite_database_and_its_wal_files_are_readable_by_the_owner_only(tmp_path):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "tracker.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        files = sorted(tmp_path.iterdir())
        assert [f.name for f in files] == [
            "tracker.sqlite",
            "tracker.sqlite-shm",
            "tracker.sqlite-wal",
        ]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
        engine.dispose()
    finally:
        os.umask(previous)


def test_init_through_the_command_line_creates_an_owner_only_file(tmp_path):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "cli.sqlite"
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "init"])
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(previous)
