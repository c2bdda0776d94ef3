"""`rules`, `alerts` and `audit` as the steering group, supervisors and auditors run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.alerts.decisions import decide
from models import Alert, Decision, table_of
from models.db import make_engine
from tests.engine.rulekit import AS_OF, THREE_RULES, add_people, copy_rules, default_pack, snapshot
from tests.feedfiles import write_force
from trauma_tracker.cli import main


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def run(runner, database_url):
    def invoke(*args, env=None):
        return runner.invoke(main, ["--db", database_url, *map(str, args)], env=env or {})

    assert invoke("init").exit_code == 0
    return invoke


@pytest.fixture
def with_alerts(run, database_url):
    """Three alerts for S1 (supervised by S2), opened at AS_OF."""
    engine = make_engine(database_url)
    add_people(engine, {"staff_id": "S1", "supervisor_id": "S2"}, {"staff_id": "S2"})
    with engine.begin() as conn:
        decide(conn, default_pack(), [snapshot("S1", **THREE_RULES)], as_of=AS_OF, now=AS_OF)
    yield engine
    engine.dispose()


def test_rules_validate_passes_the_shipped_rules_and_names_each_mistake(runner, tmp_path):
    good = runner.invoke(main, ["rules", "validate"])
    assert good.exit_code == 0 and "4 rules valid" in good.output
    folder = copy_rules(tmp_path / "rules")
    trim = folder / "interventions" / "trim-check.yaml"
    trim.write_text(
        trim.read_text()
        .replace("tier >= 3", "tier >= three")
        .replace("notify: [supervisor,", "notify: [boss,")
    )
    bad = runner.invoke(main, ["rules", "validate", str(folder)])
    assert bad.exit_code == 1
    lines = bad.output.splitlines()
    assert f"{trim}:12: 'tier >= three': quote text values: \"three\"" in lines
    assert any(line.startswith(f"{trim}:13: notify names 'boss'") for line in lines)


def test_rules_test_prints_failures_with_rule_case_and_conditions(runner, tmp_path):
    cases = sum(len(rule.tests) for rule in default_pack().rules)  # the shipped rules' own
    assert cases >= 15
    assert runner.invoke(main, ["rules", "test"]).output.endswith(f"{cases} passed, 0 failed\n")
    folder = copy_rules(tmp_path / "rules")
    peer = folder / "interventions" / "peer-percentile.yaml"
    peer.write_text(peer.read_text().replace("role_percentile >= 95", "role_percentile > 95"))
    result = runner.invoke(main, ["--rules", str(folder), "rules", "test"])
    assert result.exit_code == 1
    assert (
        f"{peer}:" in result.output
        and "rule peer-high-exposure, exactly the 95th percentile" in result.output
    )
    assert "trauma_points_365d_role_percentile > 95 (actual 95: false)" in result.output
    assert result.output.endswith(f"{cases - 1} passed, 1 failed\n")


def test_alerts_list_acknowledge_and_resolve(run, with_alerts):
    listed = run("alerts", "--json")
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.output)
    assert len(alerts) == 3
    assert {
        "alert_id",
        "staff_id",
        "rule_id",
        "severity",
        "status",
        "opened_at",
        "recipients",
    } <= set(alerts[0])
    first = alerts[0]["alert_id"]
    assert run("alerts", "ack", first, "--by", "S2").exit_code == 0
    resolved = run(
        "alerts", "resolve", first, "--by", "S2", "--outcome", "support_offered", "--note", "ok"
    )
    assert resolved.exit_code == 0 and "resolved by S2: support_offered" in resolved.output
    again = run("alerts", "resolve", first, "--by", "S2", "--outcome", "declined")
    assert again.exit_code == 1 and "already resolved" in again.output
    assert len(json.loads(run("alerts", "--json").output)) == 2
    everything = json.loads(run("alerts", "--status", "all", "--json").output)
    assert [a["status"] for a in everything].count("resolved") == 1
    text = run("alerts").output
    assert "S1" in text and "-> S2" in text

    escalated = run("alerts", "escalate", "--now", "2025-06-05T10:00Z", "--json")
    assert escalated.exit_code == 0, escalated.output
    assert len(json.loads(escalated.output)["escalated"]) == 2  # the two still open
    follow = run("alerts", "follow-ups", "--now", "2025-07-01T10:00Z", "--json")
    assert json.loads(follow.output) == {"follow_ups": [1]}  # combined-indicator's 28d reminder


def test_audit_verify_replay_and_checkpoint(run, with_alerts, tmp_path):
    assert "audit chain intact: 3 decisions\n" in run("audit", "verify").output
    assert run("audit", "replay", "2").output.endswith("replayed, same outcome and explanation\n")
    no_key = run("audit", "checkpoint")
    assert no_key.exit_code == 2 and "TT_AUDIT_KEY" in no_key.output
    key_file = tmp_path / "audit.key"
    key_file.write_text("s3cret\n")
    env = {"TT_AUDIT_KEY_FILE": str(key_file)}
    exported = tmp_path / "checkpoint.json"
    signed = run("audit", "checkpoint", "--export", exported, env=env)
    assert signed.exit_code == 0 and json.loads(exported.read_text())["checkpoint"]["seq"] == 3
    assert run("audit", "verify", "--checkpoint", exported, env=env).exit_code == 0

    with with_alerts.begin() as conn:
        conn.execute(
            table_of(Decision).update().where(table_of(Decision).c.seq == 2).values(outcome="x")
        )
        decision_id = conn.execute(
            sa.select(table_of(Decision).c.decision_id).where(table_of(Decision).c.seq == 2)
        ).scalar()
    broken = run("audit", "verify", env=env)
    assert broken.exit_code == 1
    assert f"decision {decision_id} (seq 2): its contents do not match its hash" in broken.output


def test_backtest_on_ingested_history_compares_a_changed_folder_and_opens_nothing(
    run, database_url, tmp_path
):
    write_force(tmp_path / "feeds")
    assert run("ingest", tmp_path / "feeds").exit_code == 0
    folder = copy_rules(tmp_path / "rules")
    peer = folder / "interventions" / "peer-percentile.yaml"
    peer.write_text(
        peer.read_text()
        .replace("role_percentile >= 95", "role_percentile >= 0")
        .replace("trauma_points_365d > 0", "trauma_points_365d >= 0")
    )
    result = run(
        "rules", "backtest", folder, "--from", "2025-01-01", "--to", "2025-01-31", "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    candidate, running = document["candidate"], document["running"]
    # Weekly from 1 January, and a last step on the 31st itself: both ends are in the period.
    assert candidate["steps"] == running["steps"] == 6 and candidate["disagreements"] == []
    assert candidate["ruleset"] != running["ruleset"]
    # everyone ingested is at or above the 0th percentile: one alert each in the month
    assert document["changes"]["peer-high-exposure"]["candidate"] == 2
    # the shipped rule (95th percentile, points above 0): the one with the most points of
    # their role (the backtest scores the ingested records itself; nothing was evaluated)
    assert document["changes"]["peer-high-exposure"]["running"] == 1
    assert candidate["rules"]["peer-high-exposure"]["by_month"] == {"2025-01": 2}
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table_of(Alert))).scalar() == 0
    engine.dispose()
    text = run("rules", "backtest", folder, "--from", "2025-01-01", "--to", "2025-01-31").output
    assert "peer-high-exposure: 1 -> 2 (+1)" in text


def test_the_audit_key_comes_from_the_settings(run, with_alerts):
    import trauma_tracker.cli_rules as cli_rules

    # Only trauma_tracker/settings.py reads the environment.
    source = Path(cli_rules.__file__).read_text()
    assert "os.environ" not in source and "getenv" not in source
    signed = run("audit", "checkpoint", env={"TT_AUDIT_KEY": "s3cret"})
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout)["checkpoint"]["seq"] == 3
    both = run("audit", "checkpoint", env={"TT_AUDIT_KEY": "a", "TT_AUDIT_KEY_FILE": "/x"})
    assert both.exit_code == 2 and "both TT_AUDIT_KEY and TT_AUDIT_KEY_FILE" in both.output
    missing = run("audit", "checkpoint", env={"TT_AUDIT_KEY": ""})
    assert missing.exit_code == 2
    assert "signing a checkpoint needs TT_AUDIT_KEY or TT_AUDIT_KEY_FILE" in missing.output


@pytest.mark.parametrize("command", ["validate", "test"])
def test_a_threshold_of_1e999_is_a_validation_error_not_an_engine_crash(runner, tmp_path, command):
    folder = copy_rules(tmp_path / "rules")
    cluster = folder / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace(">= 3", ">= 1e999"))
    result = runner.invoke(main, ["rules", command, str(folder)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    (line,) = [line for line in result.output.splitlines() if line.startswith(f"{cluster}:")]
    assert "1e999 is not a finite number" in line
    assert "Traceback" not in result.output


def test_rules_validate_refuses_a_billion_laughs_file_quickly(runner, tmp_path):
    folder = copy_rules(tmp_path / "rules")
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    laughs = folder / "interventions" / "laughs.yaml"
    laughs.write_text("\n".join(lines) + "\n")
    result = runner.invoke(main, ["rules", "validate", str(folder)])
    assert result.exit_code == 1
    assert f"{laughs}:1: aliases (*name) expand to more than 10000 values" in result.output
