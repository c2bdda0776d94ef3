"""`evaluate`, `exposure`, `opt-out` and `opt-in` as an operator runs them."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from engine.rules.pack import load_pack
from tests.forcedata import (
    TEST_CRITERIA_TEXT,
    Force,
    cli_with_rules,
    deployment,
    incident,
    involvement,
    occurrence,
    person,
    write_rules,
)


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(
        person("S1"),
        person("S2"),
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-1", "S1", "first_on_scene", "2025-06-01T10:12:00Z"),
        occurrence("OCC-1", "2025-03-01T10:00:00Z", "86/2", iioc_category="A"),
        involvement("OCC-1", "S1", "image_reviewer", "2025-03-02T09:00:00Z"),
    )
    yield force
    force.close()


@pytest.fixture
def run(database_url, tmp_path, force):
    return cli_with_rules(database_url, write_rules(tmp_path / "rules"))


def test_evaluate_json_has_the_contract_shape_and_runs_the_rules(run):
    result = run("evaluate", "--as-of", "2025-07-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"as_of", "people", "decisions", "alerts_opened", "ruleset"} <= set(document)
    assert document["as_of"] == "2025-07-01T00:00:00Z"
    # S1 alone has points in the response group: the top of it (peer-high-exposure). The
    # child's death was a month ago, too old for a TRiM check.
    assert (document["people"], document["decisions"], document["alerts_opened"]) == (2, 1, 1)
    assert document["ruleset"] == load_pack(run.rules).ruleset_hash
    assert document["rules_run"] is True and document["rule_problems"] == []
    assert document["mode"] == "full"
    again = json.loads(run("evaluate", "--as-of", "2025-07-01T00:00:00Z", "--json").stdout)
    assert again["mode"] == "incremental" and again["snapshots_written"] == 0
    assert (again["decisions"], again["alerts_opened"], again["people_evaluated"]) == (0, 0, 0)
    help_text = run("evaluate", "--help").output
    assert "intervention rules" in help_text and "not evaluated yet" not in help_text


def test_evaluate_text_output(run):
    result = run("evaluate", "--as-of", "2025-07-01")
    assert result.exit_code == 0, result.output
    assert "evaluated as of 2025-07-01 23:59 BST (full" in result.output
    assert "2 people" in result.output
    ruleset = load_pack(run.rules).ruleset_hash
    assert f"rules {ruleset}: 1 decision, 1 alert opened (2 people and 0 new" in result.output


def test_invalid_criteria_exit_1_naming_file_and_line(run):
    (run.rules / "criteria.yaml").write_text(
        TEST_CRITERIA_TEXT.replace("investigator: 0.5", "investigator: lots")
    )
    result = run("evaluate")
    assert result.exit_code == 1
    assert f"{run.rules / 'criteria.yaml'}:7: roles.investigator: role multiplier" in result.output


def test_bad_as_of_is_bad_usage(run):
    result = run("evaluate", "--as-of", "yesterday")
    assert result.exit_code == 2
    assert "expected a date (YYYY-MM-DD)" in result.output


def test_exposure_json_has_the_contract_shape(run):
    run("evaluate", "--as-of", "2025-07-01T00:00:00Z")
    result = run("exposure", "S1", "--as-of", "2025-07-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["staff_id"] == "S1" and document["opted_out"] is False
    # The records begin with S1's first exposure (2 March): 12 months and 5 years are partial.
    assert document["windows"] == {
        "30d": {"points": 3.0, "exposures": 1, "complete": True},
        "90d": {"points": 3.0, "exposures": 1, "complete": True},
        "365d": {"points": 5.0, "exposures": 2, "complete": False},
        "5y": {"points": 5.0, "exposures": 2, "complete": False},
    }
    assert document["history_from"] == "2025-03-02T09:00:00Z"
    first = document["exposures"][0]
    assert {"ref", "feed", "category", "tier", "role", "points", "at"} <= set(first)
    assert first == {
        "ref": "INC-1",
        "feed": "cc_incidents",
        "category": "child_death",
        "label": "Death of a child",
        "tier": 3,
        "role": "first_on_scene",
        "points": 3.0,
        "at": "2025-06-01T10:12:00Z",
        "criteria_version": first["criteria_version"],
    }
    # An earlier moment sees only what had happened by then.
    earlier = json.loads(run("exposure", "S1", "--as-of", "2025-04-01", "--json").output)
    assert [e["ref"] for e in earlier["exposures"]] == ["OCC-1"]


def test_exposure_table_is_readable(run):
    run("evaluate", "--as-of", "2025-07-01T00:00:00Z")
    result = run("exposure", "S1", "--as-of", "2025-07-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "S1 as of 2025-07-01 01:00 BST"
    assert any(line.split() == ["90d", "3", "1"] for line in lines)
    partial = "partial: the records begin 2025-03-02"
    assert any(line.split()[:3] == ["365d", "5", "2"] and line.endswith(partial) for line in lines)
    assert any(line.split()[:3] == ["5y", "5", "2"] and line.endswith(partial) for line in lines)
    assert any("Death of a child" in line and "INC-1" in line for line in lines)


def test_exposure_table_shows_whole_category_labels(database_url, tmp_path):
    force = Force(database_url)
    try:
        force.add(
            person("S1"),
            occurrence("OCC-1", "2025-03-01T10:00:00Z", "86/2", iioc_category="A"),
            involvement("OCC-1", "S1", "image_reviewer", "2025-03-02T09:00:00Z"),
        )
        rules = write_rules(tmp_path / "rules")
        criteria = rules / "criteria.yaml"
        long_label = "Category A or B images, reviewed in full for an investigation"
        criteria.write_text(criteria.read_text().replace("Category A or B images", long_label))
        run = cli_with_rules(database_url, rules)
        run("evaluate", "--as-of", "2025-07-01T00:00:00Z")
        result = run("exposure", "S1", "--as-of", "2025-07-01T00:00:00Z")
    finally:
        force.close()
    assert result.exit_code == 0, result.output
    assert any(line.endswith(long_label) for line in result.output.splitlines())


def test_a_reading_command_leaves_no_empty_database_behind(tmp_path):
    from click.testing import CliRunner

    from trauma_tracker.cli import main

    missing = tmp_path / "nowhere.sqlite"
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{missing}", "alerts"])
    assert result.exit_code == 2
    assert f"no database at {missing}" in result.output
    assert "trauma-tracker init" in result.output
    assert not missing.exists()
    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("trauma-tracker, version ")


def test_unknown_person_is_bad_input(run):
    result = run("exposure", "NOBODY")
    assert result.exit_code == 2
    assert "no person with staff id 'NOBODY'" in result.output


def test_opt_out_and_in_through_the_command_line(run, force):
    run("evaluate", "--as-of", "2025-07-01T00:00:00Z")
    result = run("opt-out", "S1", "--by", "hr.admin")
    assert result.exit_code == 0, result.output
    assert "S1 opted out" in result.output

    shown = run("exposure", "S1", "--json")
    assert json.loads(shown.output) == {"staff_id": "S1", "opted_out": True}
    assert run("exposure", "S1").output.strip() == (
        "S1 has opted out: nothing about them is recorded or shown."
    )
    assert "already opted out" in run("opt-out", "S1").output

    result = run("opt-in", "S1")
    assert result.exit_code == 0, result.output
    back = json.loads(run("exposure", "S1", "--as-of", "2025-07-01T00:00:00Z", "--json").output)
    assert back["windows"]["365d"] == {"points": 5.0, "exposures": 2, "complete": False}
    with force.engine.connect() as conn:
        actors = conn.execute(sa.text("SELECT action, actor FROM opt_out_events ORDER BY id"))
        rows = [tuple(r) for r in actors]
    assert rows[0] == ("opt_out", "hr.admin")
    assert rows[1][0] == "opt_in" and rows[1][1]  # the OS user, whoever runs the tests


def test_a_five_year_window_is_complete_only_when_the_records_go_back_five_years(run, force):
    at = "2025-07-01T00:00:00Z"
    assert json.loads(run("exposure", "S2", "--as-of", at, "--json").output)["windows"]["5y"] == {
        "points": 0,
        "exposures": 0,
        "complete": False,
    }
    # An incident six years back, none of S2's business: the force's records now reach back.
    force.add(incident("INC-OLD", "2019-05-01T10:00:00Z", "RTC_FATAL"))
    document = json.loads(run("exposure", "S2", "--as-of", at, "--json").output)
    assert all(w["complete"] for w in document["windows"].values())
    assert document["history_from"] == "2020-07-01T00:00:00Z"  # the history kept: 1826 days
    assert "partial" not in run("exposure", "S1", "--as-of", at).output
