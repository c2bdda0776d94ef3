"""`rules backtest` as the steering group runs it: on a database ingested but never evaluated
it scores the records itself (and keeps nothing), and it prints the load."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from models import Exposure, table_of
from models.db import make_engine
from tests.engine.rulekit import copy_rules
from tests.feedfiles import write_force
from trauma_tracker.cli import main

PERIOD = ("--from", "2025-01-01", "--to", "2025-01-31")


@pytest.fixture
def run(database_url):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--db", database_url, *map(str, args)])

    assert invoke("init").exit_code == 0
    return invoke


def exposures(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(table_of(Exposure))).scalar()
    engine.dispose()
    return count


def test_a_database_never_evaluated_is_scored_for_the_backtest_alone(run, database_url, tmp_path):
    write_force(tmp_path / "feeds")
    assert run("ingest", tmp_path / "feeds").exit_code == 0
    first = run("rules", "backtest", *PERIOD, "--json")
    assert first.exit_code == 0, first.output
    before = json.loads(first.stdout)
    assert before["scored_by_backtest"] is True
    [note] = before["notes"]
    assert "never been evaluated, so the backtest scored the stored records itself" in note
    text = run("rules", "backtest", *PERIOD)
    assert "note: this database has never been evaluated" in text.stderr
    # The child's death on 2 January starts TRiM checks: the rules did see the exposures.
    assert before["candidate"]["rules"]["trim-check"]["alerts"] > 0
    assert exposures(database_url) == 0  # nothing the backtest scored is kept

    assert run("evaluate", "--as-of", "2025-01-31").exit_code == 0
    assert exposures(database_url) > 0
    second = run("rules", "backtest", *PERIOD, "--json")
    assert second.exit_code == 0
    after = json.loads(second.stdout)
    assert after["scored_by_backtest"] is False and after["notes"] == []
    assert after["candidate"]["rules"] == before["candidate"]["rules"]
    assert after["candidate"]["load"] == before["candidate"]["load"]


def test_the_text_output_ends_with_the_load(run, tmp_path):
    write_force(tmp_path / "feeds")
    assert run("ingest", tmp_path / "feeds").exit_code == 0
    assert run("evaluate", "--as-of", "2025-01-31").exit_code == 0
    result = run("rules", "backtest", *PERIOD)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "2025-01-01 to 2025-01-31 (both included)" in text
    for label in (
        "alerts per 100 staff a year",
        "alerts per supervisor a month, mean",
        "alerts per supervisor a month, 95th percentile",
        "alerts to the wellbeing team per working day",
        "share of staff alerted at least once",
    ):
        assert label in text, label
    document = json.loads(run("rules", "backtest", *PERIOD, "--json").stdout)
    load = document["candidate"]["load"]
    share = f"{load['share_alerted']:.1%}"
    assert any(line.split()[-1] == share for line in text.splitlines() if "share" in line)


def test_a_changed_folder_shows_the_load_of_both_versions(run, tmp_path):
    write_force(tmp_path / "feeds")
    assert run("ingest", tmp_path / "feeds").exit_code == 0
    assert run("evaluate", "--as-of", "2025-01-31").exit_code == 0
    folder = copy_rules(tmp_path / "rules")
    trim = folder / "interventions" / "trim-check.yaml"
    trim.write_text(trim.read_text().replace("tier >= 3", "tier >= 4"))  # never fires
    document = json.loads(run("rules", "backtest", folder, *PERIOD, "--json").stdout)
    candidate, running = document["candidate"]["load"], document["running"]["load"]
    trim_checks = document["running"]["rules"]["trim-check"]["alerts"]
    assert trim_checks > 0 and document["candidate"]["rules"]["trim-check"]["alerts"] == 0
    assert running["alerts"] - candidate["alerts"] == trim_checks
    assert candidate["people"] == running["people"] > 0
    assert running["wellbeing_per_working_day"] > candidate["wellbeing_per_working_day"]
    text = run("rules", "backtest", folder, *PERIOD).stdout
    header = next(line for line in text.splitlines() if line.startswith("load"))
    assert header.split()[1:] == ["candidate", "running"]
