"""`evaluate` runs the intervention rules: alerts, the last good ruleset, opted-out people."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from engine.rules.pack import load_pack
from tests.forcedata import Force, cli_with_rules, deployment, incident, person, write_rules

T1 = "2025-07-01T11:00:00Z"
T2 = "2025-07-03T11:00:00Z"
WELLBEING = "wellbeing@force.example"


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(
        person("S1", supervisor_id="S2"),
        person("S2", supervisor_id="S3", rank_or_grade="Sergeant"),
        person("S3", rank_or_grade="Inspector"),
        person("S4", supervisor_id="S2"),
        # A child's death two days before T1: a TRiM check for whoever was there.
        incident("INC-1", "2025-06-29T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-1", "S1", "first_on_scene", "2025-06-29T10:10:00Z"),
    )
    yield force
    force.close()


@pytest.fixture
def run(database_url, tmp_path, force):
    return cli_with_rules(database_url, write_rules(tmp_path / "rules"))


def evaluate_json(run, as_of: str) -> dict:
    result = run("evaluate", "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def alerts(run) -> list[dict]:
    result = run("alerts", "--status", "all", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def count(force, sql: str, **params) -> int:
    with force.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_a_tier3_exposure_opens_a_trim_alert_for_the_supervisor_and_wellbeing(run, force):
    document = evaluate_json(run, T1)

    assert document["rules_run"] is True
    assert document["ruleset"] == load_pack(run.rules).ruleset_hash
    assert document["ruleset_name"] == f"welfare_{document['ruleset']}"
    # TRiM for the exposure, and S1 is the top of the response group (peer-high-exposure).
    assert (document["decisions"], document["alerts_opened"]) == (2, 2)
    assert document["exposures_evaluated"] == 1 and document["rule_disagreements"] == []
    trim = [a for a in alerts(run) if a["rule_id"] == "trim-check"]
    assert len(trim) == 1
    assert trim[0]["staff_id"] == "S1" and trim[0]["severity"] == "high"
    assert trim[0]["recipients"] == ["S2", WELLBEING]
    alert_id = trim[0]["alert_id"]
    # Its notifications are queued, and the TRiM follow-ups (72 hours, 28 days) booked.
    assert count(force, "SELECT COUNT(*) FROM outbox WHERE alert_id = :a", a=alert_id) >= 2
    follow_ups = count(
        force, "SELECT COUNT(*) FROM alert_follow_ups WHERE alert_id = :a", a=alert_id
    )
    assert follow_ups == 2
    assert "audit chain intact: 2 decisions" in run("audit", "verify").output

    # The same exposure is seen once: a later evaluation opens nothing new.
    again = evaluate_json(run, T2)
    assert (again["alerts_opened"], again["exposures_evaluated"]) == (0, 0)
    assert len(alerts(run)) == 2


def test_an_earlier_moment_runs_no_rules_and_says_so(run):
    evaluate_json(run, T2)
    opened = len(alerts(run))

    past = evaluate_json(run, T1)
    assert past["current"] is False and past["rules_run"] is False
    assert (past["decisions"], past["alerts_opened"], past["ruleset"]) == (0, 0, None)
    assert "earlier moment" in past["rules_skipped"]
    text = run("evaluate", "--as-of", T1)
    assert text.exit_code == 0, text.output
    assert "rules not run (an earlier moment than the newest evaluation" in text.output
    assert len(alerts(run)) == opened


def test_a_broken_rule_file_leaves_the_last_good_ruleset_running(run, force):
    good = evaluate_json(run, T1)["ruleset"]
    cluster = run.rules / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace(">= 3", "=> 3"))  # a typo
    force.add(  # a new tier-3 exposure, for S4
        incident("INC-2", "2025-07-02T09:00:00Z", "RTC_FATAL", "CHILD"),
        deployment("INC-2", "S4", "attending", "2025-07-02T09:20:00Z"),
    )

    result = run("evaluate", "--as-of", T2, "--json")

    assert result.exit_code == 0, result.output
    assert f"warning: {cluster}:10: " in result.stderr and "'=>'" in result.stderr
    assert f"still running ruleset {good}" in result.stderr
    document = json.loads(result.stdout)
    assert document["ruleset"] == good and document["ruleset_fallback"] is True
    assert len(document["rule_problems"]) == 1
    assert document["rule_problems"][0].startswith(f"{cluster}:10: ")
    assert [a["rule_id"] for a in alerts(run) if a["staff_id"] == "S4"] == ["trim-check"]
    text = run("evaluate", "--as-of", T2)
    assert f"rules {good} (last good version: the rule files have problems)" in text.output


def test_broken_rules_and_no_good_version_evaluate_nothing(run, force):
    cluster = run.rules / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace(">= 3", "=> 3"))

    result = run("evaluate", "--as-of", T1, "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{cluster}:10: " in result.stderr
    assert "no valid ruleset" in result.stderr and "nothing was evaluated" in result.stderr
    assert count(force, "SELECT COUNT(*) FROM evaluations") == 0
    assert count(force, "SELECT COUNT(*) FROM snapshots") == 0


def test_opted_out_people_get_no_snapshots_decisions_or_alerts(run, force):
    force.add(
        incident("INC-2", "2025-06-30T09:00:00Z", "RTC_FATAL", "CHILD"),
        deployment("INC-2", "S4", "attending", "2025-06-30T09:20:00Z"),
    )
    assert run("opt-out", "S4", "--by", "hr.admin").exit_code == 0

    document = evaluate_json(run, T1)

    assert document["people"] == 3 and document["alerts_opened"] >= 1
    assert {a["staff_id"] for a in alerts(run)} == {"S1"}
    for table in ("snapshots", "exposures", "decisions", "alerts", "rule_marks"):
        assert force.count(table, "S4") == 0, table


def test_opting_out_after_an_alert_deletes_it_and_the_audit_chain_still_verifies(run, force):
    assert evaluate_json(run, T1)["alerts_opened"] == 2
    assert run("opt-out", "S1", "--by", "hr.admin").exit_code == 0

    assert alerts(run) == []
    assert count(force, "SELECT COUNT(*) FROM outbox") == 0
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact: 2 decisions, 2 erased on opt-out" in verified.output
