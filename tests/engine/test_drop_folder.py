"""A drop folder written by other systems: links, files still being written, odd names, huge
lines, a folder that can't be written, two runs at once. Each ends in a clear message naming
the file, with nothing else lost and no traceback (issue 15, section 1)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.ingest.batches import Ingestor
from engine.ingest.files import ingest_files
from models import IngestRun, table_of
from models.db import make_engine, migrate
from tests.feedfiles import SAMPLE_ROWS, write_csv, write_force
from trauma_tracker.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def run(database_url, engine):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--db", database_url, *map(str, args)])

    return invoke


def incidents(engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT incident_urn, closing_code FROM cc_incidents"))
        return dict(rows.all())


def runs(engine) -> list[tuple]:
    table = table_of(IngestRun)
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table.c.source, table.c.outcome, table.c.message).order_by(table.c.id)
        ).all()


def aged(*paths: Path, seconds: float = 60) -> None:
    """As if written a while ago: past the settle period."""
    when = time.time() - seconds
    for path in paths:
        os.utime(path, (when, when), follow_symlinks=False)


def drop_folder(tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    aged(*write_force(drop))
    return drop


def incident_rows(*urns: str) -> list[dict[str, str]]:
    template = SAMPLE_ROWS["cc_incidents"][0]
    return [{**template, "incident_urn": urn} for urn in urns]


def assert_clean(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


# -- links and other things that are not regular files -----------------------------------


def test_a_link_in_a_drop_folder_is_not_followed_but_moved_aside(run, engine, tmp_path):
    drop = drop_folder(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = write_csv(outside / "cc_incidents_private.csv", incident_rows("INC-SECRET"))
    secret = (outside / "notes.txt").resolve()
    secret.write_text("TOP SECRET first line\n")
    (drop / "cc_incidents_link.csv").symlink_to(target)
    (drop / "cc_incidents_notes.csv").symlink_to(secret)
    aged(drop / "cc_incidents_link.csv", drop / "cc_incidents_notes.csv")

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert f"{drop / 'cc_incidents_link.csv'}: a symbolic link" in result.output
    assert "not followed" in result.output
    assert "TOP SECRET" not in result.output and "INC-SECRET" not in result.output
    assert "INC-SECRET" not in incidents(engine)
    assert {"INC-1", "INC-2"} <= set(incidents(engine))  # the folder's own files went in
    for name in ("cc_incidents_link.csv", "cc_incidents_notes.csv"):
        moved = drop / "failed" / name
        assert moved.is_symlink(), name  # the link itself, not a copy of its target
        reason = (drop / "failed" / f"{name}.reason.txt").read_text()
        assert "symbolic link" in reason and "TOP SECRET" not in reason
    assert target.exists() and secret.read_text() == "TOP SECRET first line\n"
    stored = json.dumps([list(map(str, r)) for r in runs(engine)])
    assert "TOP SECRET" not in stored and "INC-SECRET" not in stored


def test_a_fifo_in_a_drop_folder_is_not_read(run, engine, tmp_path):
    drop = drop_folder(tmp_path)
    os.mkfifo(drop / "cc_incidents_pipe.csv")

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert f"{drop / 'cc_incidents_pipe.csv'}: not a regular file" in result.output
    assert (drop / "failed" / "cc_incidents_pipe.csv").exists()
    assert {"INC-1", "INC-2"} <= set(incidents(engine))


# -- files still being written -------------------------------------------------------------


def test_a_file_still_being_written_waits_for_a_later_run(engine, tmp_path):
    """A writer that adds to a file within the settle period: this run leaves it, and the
    half-written last row is never stored; a later run takes the whole file."""
    drop = drop_folder(tmp_path)
    growing = drop / "cc_incidents_growing.csv"
    rows = incident_rows("INC-10", "INC-11")
    write_csv(growing, rows)
    text = growing.read_text()
    growing.write_text(text[: text.rindex("SUDDEN_DEATH") + len("SUDDEN_DE")])  # mid-row

    def finish_writing():
        time.sleep(0.4)
        growing.write_text(text)

    writer = threading.Thread(target=finish_writing)
    writer.start()
    reports = list(ingest_files(Ingestor(engine), [drop], move=True, settle_seconds=1.5))
    writer.join()

    [waiting] = [r for r in reports if r.path == str(growing)]
    assert waiting.outcome == "waiting"
    assert "still being written" in waiting.message and "left for the next run" in waiting.message
    assert growing.exists() and not (drop / "processed" / growing.name).exists()
    assert "INC-11" not in incidents(engine)
    assert str(growing) not in [source for source, *_ in runs(engine)]

    aged(growing)
    [later] = list(ingest_files(Ingestor(engine), [drop], move=True, settle_seconds=1.5))
    assert (later.outcome, later.accepted) == ("ok", 2)
    assert incidents(engine)["INC-11"] == "SUDDEN_DEATH"
    assert (drop / "processed" / growing.name).exists()


def test_a_file_that_changes_while_it_is_stored_is_not_moved(engine, tmp_path):
    """Rows appended while the file is stored are not lost in processed/: the file stays,
    and the next run stores what was added."""
    drop = drop_folder(tmp_path)
    growing = write_csv(drop / "cc_incidents_growing.csv", incident_rows("INC-10"))
    aged(growing)

    def append(name, rows):
        if name == str(growing) and "INC-11" not in growing.read_text():
            with growing.open("a", newline="") as handle:
                csv.writer(handle).writerow(
                    [incident_rows("INC-11")[0][c] for c in SAMPLE_ROWS["cc_incidents"][0]]
                )

    reports = list(ingest_files(Ingestor(engine, progress=append), [drop], move=True))

    [changed] = [r for r in reports if r.path == str(growing)]
    assert (changed.outcome, changed.accepted) == ("ok", 1)
    assert "changed while it was being ingested" in changed.warning
    assert growing.exists() and not (drop / "processed" / growing.name).exists()
    assert "INC-11" not in incidents(engine)

    aged(growing)
    [later] = list(ingest_files(Ingestor(engine), [drop], move=True))
    assert (later.outcome, later.accepted, later.unchanged) == ("ok", 1, 1)
    assert "INC-11" in incidents(engine)
    assert (drop / "processed" / growing.name).exists()


@pytest.mark.parametrize(
    "name", [".cc_incidents_new.csv", "cc_incidents_new.csv.tmp", "cc_incidents_new.csv.partial"]
)
def test_a_file_written_under_a_temporary_name_is_left_alone(engine, tmp_path, name):
    drop = drop_folder(tmp_path)
    hidden = write_csv(drop / name, incident_rows("INC-HIDDEN"))
    aged(hidden)

    reports = list(ingest_files(Ingestor(engine), [drop], move=True))

    assert str(hidden) not in [r.path for r in reports]
    assert hidden.exists() and "INC-HIDDEN" not in incidents(engine)


# -- files that can't be processed never stop the run --------------------------------------


def test_a_file_name_that_is_not_utf8_fails_alone(run, engine, tmp_path):
    drop = drop_folder(tmp_path)
    odd = drop / os.fsdecode(b"cc_incidents_caf\xe9.csv")
    aged(write_csv(odd, incident_rows("INC-ODD")))

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert "cc_incidents_caf\\xe9.csv: the file name is not valid UTF-8" in result.output
    assert "INC-ODD" not in incidents(engine)
    assert {"INC-1", "INC-2"} <= set(incidents(engine))
    assert os.fsencode(drop / "failed" / odd.name) in [
        os.fsencode(p) for p in (drop / "failed").iterdir()
    ]
    again = run("ingest", "--move", drop)
    assert_clean(again)
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("where", ["header", "row"])
def test_a_line_larger_than_the_field_limit_fails_its_file_alone(run, engine, tmp_path, where):
    drop = drop_folder(tmp_path)
    huge = drop / "cc_incidents_huge.csv"
    big = "A" * (csv.field_size_limit() + 10)
    rows = incident_rows("INC-HUGE")
    if where == "header":
        huge.write_text(f"incident_urn,created_at,closing_code,{big}\n")
    else:
        write_csv(huge, [{**rows[0], "qualifiers": big}])
    aged(huge)

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 2, result.output
    line = 1 if where == "header" else 2
    assert f"{huge}: line {line}: a field larger than" in result.output
    assert len(result.output) < 10_000  # the line is not echoed
    assert (drop / "failed" / huge.name).exists()
    assert {"INC-1", "INC-2"} <= set(incidents(engine))
    again = run("ingest", "--move", drop)
    assert again.exit_code == 0, again.output


def test_a_drop_folder_whose_processed_folder_cant_be_made(run, engine, tmp_path):
    drop = drop_folder(tmp_path)
    (drop / "processed").write_text("not a folder\n")

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 1, result.output
    assert f"{drop / 'units_sample.csv'}: stored, but could not be moved to processed/" in (
        result.output
    )
    assert {"INC-1", "INC-2"} <= set(incidents(engine))
    assert (drop / "units_sample.csv").exists()  # left where it was, for the next run
    assert [outcome for _, outcome, _ in runs(engine)] == ["ok"] * 8
    again = run("ingest", "--move", drop)
    assert_clean(again)
    assert again.exit_code == 1, again.output
    assert "already ingested" in again.output


def test_a_failed_file_that_cant_be_moved_is_skipped_with_a_message(run, engine, tmp_path):
    drop = drop_folder(tmp_path)
    (drop / "failed").write_text("not a folder\n")
    aged(write_csv(drop / "cc_incidents_broken.csv", [{"incident_urn": "INC-9", "grade": "1"}]))

    result = run("ingest", "--move", drop)

    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert "cc_incidents_broken.csv: not a cc_incidents file" in result.output
    assert "could not be moved to failed/" in result.output
    assert {"INC-1", "INC-2"} <= set(incidents(engine))
    assert (drop / "cc_incidents_broken.csv").exists()


# -- two runs at once ----------------------------------------------------------------------


def test_two_runs_over_one_folder_at_once_store_each_file_once(database_url, engine, tmp_path):
    drop = drop_folder(tmp_path)
    for n in range(30):
        write_csv(drop / f"cc_incidents_{n:02d}.csv", incident_rows(f"INC-{n}-a", f"INC-{n}-b"))
    aged(*drop.iterdir())
    command = [sys.executable, "-m", "trauma_tracker", "--db", database_url, "ingest", "--move"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}

    both = [
        subprocess.Popen(
            [*command, str(drop)],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    finished = [process.communicate(timeout=180) for process in both]

    for process, (out, err) in zip(both, finished, strict=True):
        assert "Traceback" not in err, err
        assert process.returncode == 0, out + err
    assert [outcome for _, outcome, _ in runs(engine) if outcome != "ok"] == []
    assert len(incidents(engine)) == 2 + 60
    assert sorted(p.name for p in drop.iterdir() if p.suffix == ".csv") == []
    assert len([p for p in (drop / "processed").iterdir()]) == 38
