"""`alerts` as a new user meets it: list (the default) with filters, show one, act on one,
the same exit code for every unknown id, and one meaning for a time on the command line."""

from __future__ import annotations

import json

import pytest

from tests.forcedata import Force, cli_with_rules, deployment, incident, person, write_rules

T1 = "2025-07-01T11:00:00Z"
WELLBEING = "wellbeing@force.example"


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(
        person("S1", supervisor_id="S2"),
        person("S2", supervisor_id="S3", rank_or_grade="Sergeant"),
        person("S3", rank_or_grade="Inspector"),
        person("S5", supervisor_id="S3", unit_id="T9"),
        # A child's death two days before T1: a TRiM check for S1 and S5, who were there.
        incident("INC-1", "2025-06-29T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-1", "S1", "first_on_scene", "2025-06-29T10:10:00Z"),
        deployment("INC-1", "S5", "attending", "2025-06-29T10:20:00Z"),
    )
    yield force
    force.close()


@pytest.fixture
def run(database_url, tmp_path, force):
    run = cli_with_rules(database_url, write_rules(tmp_path / "rules"))
    evaluated = run("evaluate", "--as-of", T1)
    assert evaluated.exit_code == 0, evaluated.output
    return run


def listed(run, *args: str) -> list[dict]:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def trim_alert(run, staff_id: str) -> int:
    (found,) = [
        a
        for a in listed(run, "alerts", "--json")
        if a["staff_id"] == staff_id and a["rule_id"] == "trim-check"
    ]
    return found["alert_id"]


def test_alerts_alone_is_alerts_list_and_json_goes_before_or_after(run):
    every = listed(run, "alerts", "list", "--status", "all", "--json")
    assert {(a["staff_id"], a["rule_id"]) for a in every} >= {
        ("S1", "trim-check"),
        ("S5", "trim-check"),
    }
    assert listed(run, "alerts", "--status", "all", "--json") == every
    assert listed(run, "--json", "alerts", "--status", "all") == every
    assert listed(run, "--json", "alerts", "list", "--status", "all") == every
    text = run("alerts")
    assert text.exit_code == 0 and "trim-check" in text.output
    assert "2025-07-01 12:00 BST" in text.output  # opened at T1, shown in London time


def test_alerts_filter_by_recipient_unit_and_rule(run):
    s5 = trim_alert(run, "S5")
    to_s3 = listed(run, "alerts", "--recipient", "S3", "--json")
    assert [a["alert_id"] for a in to_s3 if a["rule_id"] == "trim-check"] == [s5]
    assert all("S3" in a["recipients"] for a in to_s3)
    in_t9 = listed(run, "alerts", "--unit", "T9", "--json")
    assert {a["staff_id"] for a in in_t9} == {"S5"}
    trim = listed(run, "alerts", "--rule", "trim-check", "--json")
    assert {a["staff_id"] for a in trim} == {"S1", "S5"} and len(trim) == 2
    both = listed(run, "alerts", "--rule", "trim-check", "--unit", "T1", "--json")
    assert [a["staff_id"] for a in both] == ["S1"]
    # An address is a recipient too, and a filter that matches nothing says so.
    assert {a["staff_id"] for a in listed(run, "alerts", "--recipient", WELLBEING, "--json")} == {
        "S1",
        "S5",
    }
    nothing = run("alerts", "--recipient", "S1", "--rule", "trim-check")
    assert nothing.exit_code == 0
    assert "no open alerts sent to S1 of rule trim-check" in nothing.output


def test_alerts_show_gives_the_explanation_recipients_notes_and_history(run):
    alert_id = trim_alert(run, "S1")
    acked = run("alerts", "ack", alert_id, "--by", "S2", "--note", "spoke on the phone")
    assert acked.exit_code == 0, acked.output

    shown = run("alerts", "show", alert_id)

    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert f"alert {alert_id}: " in text and "person:   S1 (Person S1)" in text
    assert "rule:     trim-check" in text and "status:   acknowledged" in text
    why = text.split("why it fired:\n")[1].split("sent to:")[0]
    assert why.strip().startswith("held: ") and "exposure tier 3" in why
    assert "supervisor: S2 (Person S2) by teams, email" in text
    assert f"wellbeing: {WELLBEING} by email" in text
    assert "(acknowledged): spoke on the phone" in text.split("notes:\n")[1]
    history = text.split("history:\n")[1]
    assert "system  opened" in history and "S2 (Person S2)  acknowledged" in history

    document = listed(run, "alerts", "show", alert_id, "--json")
    assert document["alert_id"] == alert_id and document["status"] == "acknowledged"
    assert document["recipients"] == ["S2", WELLBEING]
    assert [e["action"] for e in document["history"]] == ["opened", "acknowledged"]
    assert document["reasons"] and all(isinstance(r, str) for r in document["reasons"])
    assert listed(run, "--json", "alerts", "show", alert_id) == document


def test_listing_options_before_a_subcommand_are_set_aside_with_a_note(run):
    alert_id = trim_alert(run, "S1")

    result = run("alerts", "--status", "all", "ack", alert_id, "--by", "S2")

    assert result.exit_code == 0, result.output
    assert f"alert {alert_id} acknowledged by S2" in result.stdout
    assert "note: --status all chooses which alerts are listed" in result.stderr
    shown = listed(run, "alerts", "--status", "all", "show", alert_id, "--json")
    assert shown["status"] == "acknowledged"


def test_the_required_by_is_asked_for(run):
    alert_id = trim_alert(run, "S1")
    for args in (("ack", alert_id), ("resolve", alert_id, "--outcome", "referred")):
        result = run("alerts", *args)
        assert result.exit_code == 2
        assert "Missing option '--by'" in result.output


def test_unknown_ids_exit_2_and_a_refused_change_exits_1(run):
    for args in (
        ("alerts", "show", "999"),
        ("alerts", "ack", "999", "--by", "S2"),
        ("alerts", "resolve", "999", "--by", "S2", "--outcome", "referred"),
        ("exposure", "NOBODY"),
        ("opt-out", "NOBODY", "--by", "hr.admin"),
        ("audit", "replay", "999"),
        ("outbox", "retry", "999"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "trauma-tracker: no " in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output

    alert_id = trim_alert(run, "S1")
    resolve = ("alerts", "resolve", alert_id, "--by", "S2", "--outcome", "support_offered")
    assert run(*resolve).exit_code == 0
    again = run(*resolve)
    assert again.exit_code == 1 and "already resolved" in again.stderr
    ack = run("alerts", "ack", alert_id, "--by", "S2")
    assert ack.exit_code == 1 and "only an open alert can be acknowledged" in ack.stderr


def test_json_before_a_command_that_prints_none_is_refused(run):
    alert_id = trim_alert(run, "S1")
    for args in (
        ("--json", "alerts", "ack", alert_id, "--by", "S2"),
        ("alerts", "--json", "ack", alert_id, "--by", "S2"),
        ("--json", "init"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "prints no JSON document: leave out --json" in result.output
    assert listed(run, "alerts", "--json")[0]["status"] == "open"  # nothing was acknowledged


def test_a_bare_date_means_the_end_of_that_day_for_every_command(run):
    """--as-of and --now read a time alike: a bare date is the end of that day in London."""
    # Opened at T1 (1 July, 12:00 BST); escalate.after is 72 hours: due 4 July, 12:00 BST.
    result = run("alerts", "escalate", "--now", "2025-07-03", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"escalated": []}
    result = run("alerts", "escalate", "--now", "2025-07-04", "--json")
    escalated = json.loads(result.stdout)["escalated"]
    assert sorted(escalated) == sorted(a["alert_id"] for a in listed(run, "alerts", "--json"))
    commands = (("alerts", "follow-ups", "--now"), ("notify", "--now"), ("evaluate", "--as-of"))
    for command in commands:
        for bad_time in ("30/06/2025", "9999-12-31", "0001-01-01T00:00+01:00", "1899-12-31"):
            bad = run(*command, bad_time)
            assert bad.exit_code == 2, (command, bad_time, bad.output)
            assert "expected a date (YYYY-MM-DD) or an ISO 8601 time" in bad.output
            assert "from 1900-01-01 to 2100-12-31" in bad.output and "Traceback" not in bad.output
    assert run("alerts", "follow-ups", "--now", "2100-12-31").exit_code == 0


def test_reading_commands_leave_no_database_behind(tmp_path, monkeypatch):
    missing = tmp_path / "nothing-here.sqlite"
    run = cli_with_rules(f"sqlite:///{missing}", write_rules(tmp_path / "rules"))
    monkeypatch.chdir(tmp_path)
    for args in (
        ("alerts",),
        ("alerts", "show", "1"),
        ("exposure", "S1"),
        ("outbox",),
        ("audit", "verify"),
        ("notify",),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"no database at {missing}" in result.stderr
        assert "trauma-tracker init" in result.stderr
        assert not missing.exists(), args
    # In a clone where `make demo` ran, the message says how to reach the demo's database.
    (tmp_path / "demo-data").mkdir()
    (tmp_path / "demo-data" / "tracker.sqlite").touch()
    result = run("alerts")
    assert "--db sqlite:///demo-data/tracker.sqlite` before the command" in result.stderr


def test_audit_replay_differs_once_the_stored_outcome_was_edited(run, force):
    from models import Decision, table_of

    decisions = table_of(Decision)
    assert run("audit", "replay", "1").exit_code == 0
    with force.engine.begin() as conn:
        conn.execute(
            decisions.update().where(decisions.c.seq == 1).values(outcome="suppressed_cooldown")
        )

    result = run("audit", "replay", "1")

    assert result.exit_code == 1, result.output
    assert "replay differs" in result.output
    assert "outcome is stored as suppressed_cooldown, but alert" in result.output
    assert "do not match its hash" in result.output
    document = json.loads(run("audit", "replay", "1", "--json").stdout)
    assert document["same"] is False and len(document["differences"]) == 2


@pytest.mark.parametrize("outcome", ["no_action_needed", "false_positive"])
def test_no_follow_up_is_queued_or_sent_for_an_alert_resolved_as_not_needed(run, force, outcome):
    import sqlalchemy as sa

    from models import AlertFollowUp, OutboxMessage, table_of

    follow_ups, outbox = table_of(AlertFollowUp), table_of(OutboxMessage)
    s1, s5 = trim_alert(run, "S1"), trim_alert(run, "S5")
    # S5's first reminder is queued (72 hours on), then both alerts are resolved as not needed.
    queued = listed(run, "alerts", "follow-ups", "--now", "2025-07-04T12:00:00Z", "--json")
    assert len(queued["follow_ups"]) == 2  # the 72-hour reminders of both alerts
    for alert_id in (s1, s5):
        resolved = run("alerts", "resolve", alert_id, "--by", "S2", "--outcome", outcome)
        assert resolved.exit_code == 0, resolved.output

    later = listed(run, "alerts", "follow-ups", "--now", "2025-08-30", "--json")

    assert later == {"follow_ups": []}
    with force.engine.connect() as conn:
        states = conn.execute(
            sa.select(follow_ups.c.alert_id, follow_ups.c.status).where(
                follow_ups.c.alert_id.in_([s1, s5])
            )
        ).all()
        reminders = conn.execute(
            sa.select(outbox.c.status).where(outbox.c.kind == "follow_up")
        ).scalars()
        assert {status for _, status in states} == {"cancelled"} and len(states) == 4
        assert set(reminders) == {"cancelled"}
