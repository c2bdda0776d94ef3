"""`trauma-tracker init` and `ingest` as an operator runs them: output, JSON shape, exit codes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from click.testing import CliRunner

from models.db import head_revision
from tests.feedfiles import SAMPLE_ROWS, write_csv, write_force
from trauma_tracker.cli import main


def _runner(url: str):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--db", url, *map(str, args)])

    return invoke


@pytest.fixture
def run(database_url):
    return _runner(database_url)


@pytest.fixture
def run_on_empty(empty_database_url):
    """The command line on a database with no schema yet."""
    return _runner(empty_database_url)


def test_init_creates_then_reports_current(run_on_empty):
    first = run_on_empty("init")
    assert first.exit_code == 0, first.output
    assert f"schema created -> {head_revision()}" in first.output
    second = run_on_empty("init")
    assert f"schema is current ({head_revision()})" in second.output


def test_ingest_before_init_says_what_to_do(run_on_empty, tmp_path):
    result = run_on_empty("ingest", write_csv(tmp_path / "units.csv", SAMPLE_ROWS["units"]))
    assert result.exit_code == 2
    assert "run `trauma-tracker init`" in result.output


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_ingest_json_has_the_contract_shape(run, tmp_path, jobs):
    run("init")
    write_force(tmp_path / "feeds")
    bad = {**SAMPLE_ROWS["cc_incidents"][1], "incident_urn": "INC-9", "closing_code": "??"}
    write_csv(tmp_path / "feeds" / "cc_incidents_more.csv", [bad])

    result = run("ingest", "--json", "--jobs", jobs, tmp_path / "feeds")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    # In dependency order, however many feeds were stored at once.
    assert [f["feed"] for f in document["files"]] == [
        "units", "people", "cc_incidents", "cc_incidents", "cc_deployments", "rms_occurrences",
        "rms_involvements", "rest_day_cancellations", "absences",
    ]  # fmt: skip
    entry = next(f for f in document["files"] if f["path"].endswith("cc_incidents_more.csv"))
    assert {"path", "feed", "accepted", "unchanged", "rejected", "held", "rejects"} <= set(entry)
    assert entry["feed"] == "cc_incidents"
    assert entry["rejected"] == 1
    assert entry["rejects"] == [
        {"line": 2, "field": "closing_code", "reason": "closing_code: unknown closing code '??'"}
    ]


def test_text_output_names_file_line_and_field(run, tmp_path):
    run("init")
    bad = {**SAMPLE_ROWS["units"][1], "level": "squad"}
    path = write_csv(tmp_path / "units.csv", [SAMPLE_ROWS["units"][0], bad])
    result = run("ingest", path)
    assert result.exit_code == 0
    assert f"{path}:3: level: unknown value 'squad'" in result.output


def test_a_file_that_cannot_be_processed_exits_2_naming_it(run, tmp_path):
    run("init")
    good = write_csv(tmp_path / "units.csv", SAMPLE_ROWS["units"])
    broken = tmp_path / "people_bad.csv"
    broken.write_text("staff_id,display_name\nS1,Alex\n")

    result = run("ingest", good, broken)

    assert result.exit_code == 2
    assert f"{broken}: not a people file: missing required column(s) staff_type" in result.output
    assert "units.csv (units): 2 accepted" in result.output  # the good file still went in


def test_a_missing_path_exits_2(run, tmp_path):
    run("init")
    result = run("ingest", tmp_path / "nowhere.csv")
    assert result.exit_code == 2
    assert "nowhere.csv: no such file or folder" in result.output


def test_progress_in_rows_per_second_on_a_terminal(tmp_path):
    """Run as an operator would, with stderr on a terminal (a pseudo-terminal here)."""
    database = f"sqlite:///{tmp_path / 'tty.sqlite'}"
    path = write_csv(tmp_path / "units.csv", SAMPLE_ROWS["units"])
    cli = [sys.executable, "-m", "trauma_tracker", "--db", database]
    subprocess.run([*cli, "init"], check=True, capture_output=True)
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [*cli, "ingest", str(path)], stderr=secondary, stdout=subprocess.PIPE
    ) as proc:
        os.close(secondary)
        shown = b""
        while True:
            try:
                data = os.read(primary, 1024)
            except OSError:  # the terminal closes when the process ends
                break
            if not data:
                break
            shown += data
        proc.wait(timeout=60)
    os.close(primary)
    assert proc.returncode == 0
    assert b"units.csv: 2 rows," in shown
    assert b"rows/s" in shown
