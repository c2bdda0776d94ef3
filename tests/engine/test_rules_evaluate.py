"""Evaluation on SQLite and PostgreSQL: decisions, alerts, recipients, lifecycle, fallback."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import lifecycle as alert_ops
from engine.alerts.audit import verify
from engine.alerts.decisions import decide, recent_exposures
from engine.rules.active import RulesetKeeper, load_active
from engine.rules.marks import Marks
from engine.rules.pack import load_pack
from models import (
    Alert,
    AlertEvent,
    AlertFollowUp,
    AuditHead,
    Decision,
    Exposure,
    OutboxMessage,
    table_of,
)
from tests.engine.rulekit import (
    AS_OF,
    THREE_RULES,
    add_people,
    copy_rules,
    database,
    default_pack,
    exposure,
    snapshot,
)

DAY = timedelta(days=1)


def rows(engine, model, *where):
    """The model's rows in the order they were made (without ORDER BY a database may answer
    in any order)."""
    table = table_of(model)
    with engine.connect() as conn:
        query = sa.select(table).where(*where).order_by(*table.primary_key.columns)
        return conn.execute(query).all()


def run(engine, snapshots, exposures=(), *, at=AS_OF, pack=None, marks=None):
    with engine.begin() as conn:
        summary = decide(
            conn, pack or default_pack(), snapshots, exposures, as_of=at, now=at, marks=marks
        )
    assert summary.disagreements == []
    return summary


@pytest.fixture
def db(database_url):
    engine = database(database_url)
    add_people(
        engine,
        {"staff_id": "S1", "supervisor_id": "S2"},
        {"staff_id": "S2", "supervisor_id": "S3", "rank_or_grade": "PS"},
        {"staff_id": "S3", "rank_or_grade": "INSP"},
    )
    yield engine
    engine.dispose()


def test_one_person_meeting_three_rules_gets_three_decisions_and_alerts(db):
    summary = run(db, [snapshot("S1", **THREE_RULES), snapshot("S2"), snapshot("S3")])

    assert (summary.people, summary.decisions, summary.alerts_opened) == (3, 3, 3)
    decisions = rows(db, Decision)
    assert sorted(d.rule_id for d in decisions) == [
        "cluster-30d",
        "combined-indicator",
        "peer-high-exposure",
    ]
    assert {d.staff_id for d in decisions} == {"S1"}
    assert all(d.outcome == "alert_opened" and d.ruleset_hash == summary.ruleset for d in decisions)
    combined = next(d for d in decisions if d.rule_id == "combined-indicator")
    explanation = json.loads(combined.explanation)
    first = explanation["items"][0]
    assert first == {
        "field": "trauma_points_90d",
        "op": ">=",
        "value": 12,
        "actual": 14.0,
        "result": True,
    }
    assert json.loads(combined.input)["values"]["cancelled_rest_days_90d"] == 3
    alerts = rows(db, Alert)
    assert sorted(a.rule_id for a in alerts) == sorted(d.rule_id for d in decisions)
    assert {a.decision_id for a in alerts} == {d.decision_id for d in decisions}
    outbox = rows(db, OutboxMessage)
    # supervisor by Teams and email on each alert, and the wellbeing team on the combined one
    assert len(outbox) == 7
    assert {o.recipient for o in outbox} == {"S2", "wellbeing@force.example"}
    for message in outbox:
        body = json.loads(message.payload)
        assert set(body) == {"kind", "alert_id", "staff_id", "name", "title", "severity", "link"}
        assert message.status == "pending"
    with db.connect() as conn:
        assert verify(conn).ok


def test_cooldown_and_open_alert_dedup_across_evaluations(db):
    cluster = {"tier2plus_exposures_30d": 3}
    first = run(db, [snapshot("S1", **cluster)])
    assert first.alerts_opened == 1
    (alert,) = rows(db, Alert)

    same = run(db, [snapshot("S1", **cluster)], at=AS_OF + DAY)
    assert (same.people_evaluated, same.decisions) == (0, 0)  # nothing changed: not evaluated

    more = run(db, [snapshot("S1", tier2plus_exposures_30d=4)], at=AS_OF + 2 * DAY)
    assert (more.decisions, more.alerts_opened) == (1, 0)
    latest = rows(db, Decision, table_of(Decision).c.seq == 2)[0]
    assert (latest.outcome, latest.alert_id) == ("suppressed_open_alert", alert.id)

    with db.begin() as conn:
        alert_ops.resolve(conn, alert.id, "S2", "support_offered", AS_OF + 3 * DAY)
    cooling = run(db, [snapshot("S1", tier2plus_exposures_30d=4)], at=AS_OF + 4 * DAY)
    assert (cooling.decisions, cooling.alerts_opened) == (1, 0)
    assert rows(db, Decision, table_of(Decision).c.seq == 3)[0].outcome == "suppressed_cooldown"

    still = run(db, [snapshot("S1", tier2plus_exposures_30d=4)], at=AS_OF + 20 * DAY)
    assert still.people_evaluated == 0  # same figures, and the cooldown has not ended yet

    cooldown = next(r for r in default_pack().rules if r.id == "cluster-30d").cooldown
    assert cooldown > 20 * DAY
    after = run(db, [snapshot("S1", tier2plus_exposures_30d=4)], at=AS_OF + cooldown + DAY)
    assert after.alerts_opened == 1
    assert [a.status for a in rows(db, Alert)] == ["resolved", "open"]


def test_kept_marks_skip_unchanged_people_and_follow_commits_and_resolutions(db):
    marks = Marks()  # as the scheduler keeps it between runs
    assert run(db, [snapshot("S1", tier2plus_exposures_30d=3)], marks=marks).alerts_opened == 1
    assert run(db, [snapshot("S1", tier2plus_exposures_30d=3)], marks=marks).people_evaluated == 0
    with pytest.raises(RuntimeError), db.begin() as conn:
        decide(
            conn,
            default_pack(),
            [snapshot("S1", tier2plus_exposures_30d=5)],
            as_of=AS_OF,
            marks=marks,
        )
        raise RuntimeError("rolled back: the run never happened")
    again = run(db, [snapshot("S1", tier2plus_exposures_30d=5)], at=AS_OF + DAY, marks=marks)
    assert again.people_evaluated == 1 and again.decisions == 1
    (alert,) = rows(db, Alert)
    with db.begin() as conn:
        alert_ops.resolve(conn, alert.id, "S2", "support_offered", AS_OF + 2 * DAY)
    after = run(db, [snapshot("S1", tier2plus_exposures_30d=5)], at=AS_OF + 3 * DAY, marks=marks)
    assert after.people_evaluated == 1  # the resolution asked for a fresh look
    assert rows(db, Decision)[-1].outcome == "suppressed_cooldown"


def test_the_database_refuses_a_second_open_alert_for_a_person_and_rule(db):
    run(db, [snapshot("S1", tier2plus_exposures_30d=3)])
    (alert,) = rows(db, Alert)
    copy = {c: v for c, v in alert._mapping.items() if c != "id"}
    with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
        conn.execute(table_of(Alert).insert(), copy)


def test_a_person_who_moved_team_the_day_before_alerts_the_new_supervisor(db):
    add_people(db, {"staff_id": "S1", "valid_from": AS_OF.date() - DAY, "supervisor_id": "S3"})
    run(db, [snapshot("S1", tier2plus_exposures_30d=3)])
    (alert,) = rows(db, Alert)
    assert [r["to"] for r in json.loads(alert.recipients)] == ["S3"]
    assert {o.recipient for o in rows(db, OutboxMessage)} == {"S3"}
    with db.connect() as conn:
        people = alert_ops.PeopleDirectory.load(conn, ["S1"])
    assert people.supervisor("S1", AS_OF.date() - 2 * DAY) == "S2"  # before the move


def test_a_supervisors_own_alert_goes_to_their_supervisor_never_to_themselves(db):
    add_people(db, {"staff_id": "S4", "supervisor_id": "S4"})  # a data error: their own boss
    run(db, [snapshot(s, tier2plus_exposures_30d=3) for s in ("S2", "S3", "S4")])
    sent = {a.staff_id: json.loads(a.recipients) for a in rows(db, Alert)}
    assert [r["to"] for r in sent["S2"]] == ["S3"]
    # nobody above them in force: the escalation recipient hears instead of nobody
    for staff in ("S3", "S4"):
        assert sent[staff] == [
            {
                "name": "wellbeing",
                "to": "wellbeing@force.example",
                "channels": ["email"],
                "instead_of": "supervisor",
            }
        ]


def test_exposure_rule_fires_once_per_recent_exposure_with_follow_ups(db):
    recent = exposure("S1", AS_OF - DAY, ref="INC-1")
    old = exposure("S1", AS_OF - 10 * DAY, ref="INC-OLD")
    summary = run(db, [snapshot("S1")], [recent, old])
    assert (summary.exposures_evaluated, summary.alerts_opened) == (2, 1)
    (decision,) = rows(db, Decision)
    assert decision.rule_id == "trim-check" and decision.subject == "exposure"
    record = json.loads(decision.input)
    assert record["exposure"]["ref"] == "INC-1" and record["values"]["age_days"] == 1.0
    (alert,) = rows(db, Alert)
    follow_ups = sorted((f.label, f.due_at) for f in rows(db, AlertFollowUp))
    assert follow_ups == [("28d", AS_OF + 28 * DAY), ("72h", AS_OF + 3 * DAY)]

    again = run(db, [snapshot("S1")], [recent, old], at=AS_OF + DAY)
    assert (again.exposures, again.exposures_evaluated, again.decisions) == (2, 0, 0)


def test_scored_exposures_from_the_exposures_table_feed_the_exposure_rules(db):
    scored = [
        exposure("S1", AS_OF - h * DAY, ref=f"INC-{h}", criteria_version="c1", scored_at=AS_OF)
        for h in (1, 9)
    ]
    with db.begin() as conn:
        conn.execute(table_of(Exposure).insert(), scored)
        recent = recent_exposures(conn, default_pack(), AS_OF)
    assert [e["ref"] for e in recent] == ["INC-1"]
    summary = run(db, [snapshot("S1")], recent)
    assert summary.alerts_opened == 1
    assert rows(db, Alert)[0].rule_id == "trim-check"


def test_decision_alert_and_outbox_rows_are_one_transaction(db):
    with pytest.raises(RuntimeError), db.begin() as conn:
        decide(conn, default_pack(), [snapshot("S1", **THREE_RULES)], as_of=AS_OF, now=AS_OF)
        raise RuntimeError("the process dies before commit")
    for model in (Decision, Alert, OutboxMessage, AlertEvent):
        assert rows(db, model) == []
    assert [(h.seq) for h in rows(db, AuditHead)] in ([], [0])


def test_acknowledge_and_resolve_record_who_did_what_and_when(db):
    run(db, [snapshot("S1", tier2plus_exposures_30d=3)])
    (alert,) = rows(db, Alert)
    with db.begin() as conn:
        alert_ops.acknowledge(conn, alert.id, "S2", AS_OF + DAY, note="spoke briefly")
    refused = pytest.raises(alert_ops.AlertError, match="is acknowledged; only an open alert")
    with refused, db.begin() as conn:
        alert_ops.acknowledge(conn, alert.id, "S2", AS_OF + DAY)
    with pytest.raises(alert_ops.AlertError, match="outcome must be one of"), db.begin() as conn:
        alert_ops.resolve(conn, alert.id, "S2", "fine", AS_OF + DAY)
    with db.begin() as conn:
        alert_ops.resolve(conn, alert.id, "S2", "referred", AS_OF + 2 * DAY, note="to OH")
    with pytest.raises(alert_ops.AlertError, match="already resolved"), db.begin() as conn:
        alert_ops.resolve(conn, alert.id, "S3", "declined", AS_OF + 3 * DAY)

    (alert,) = rows(db, Alert)
    assert (alert.status, alert.outcome, alert.note, alert.open_key) == (
        "resolved",
        "referred",
        "to OH",
        None,
    )
    assert (alert.acknowledged_by, alert.resolved_by) == ("S2", "S2")
    events = [(e.action, e.actor, e.at) for e in rows(db, AlertEvent)]
    assert events == [
        ("opened", "system", AS_OF),
        ("acknowledged", "S2", AS_OF + DAY),
        ("resolved", "S2", AS_OF + 2 * DAY),
    ]
    with db.connect() as conn:
        assert [a["status"] for a in alert_ops.list_alerts(conn, "all")] == ["resolved"]
        assert alert_ops.list_alerts(conn, "open") == []
    with pytest.raises(alert_ops.AlertError, match="no alert 999"), db.begin() as conn:
        alert_ops.acknowledge(conn, 999, "S2", AS_OF)


def test_escalation_and_follow_ups_are_steps_the_scheduler_calls(db):
    routing = default_pack().routing
    run(db, [snapshot("S1")], [exposure("S1", AS_OF)])  # TRiM: follow-ups at 72h and 28d
    run(db, [snapshot("S2", tier2plus_exposures_30d=3)], at=AS_OF + DAY)
    trim, cluster = rows(db, Alert)
    with db.begin() as conn:
        alert_ops.acknowledge(conn, cluster.id, "S3", AS_OF + DAY)
    with db.begin() as conn:
        assert alert_ops.escalate_overdue(conn, routing, AS_OF + timedelta(hours=71)) == []
        assert alert_ops.escalate_overdue(conn, routing, AS_OF + timedelta(hours=73)) == [trim.id]
        assert alert_ops.escalate_overdue(conn, routing, AS_OF + timedelta(hours=90)) == []
    escalations = rows(db, OutboxMessage, table_of(OutboxMessage).c.kind == "escalation")
    assert [(m.recipient, m.channel) for m in escalations] == [("wellbeing@force.example", "email")]

    with db.begin() as conn:
        assert len(alert_ops.send_follow_ups(conn, routing, AS_OF + timedelta(hours=73))) == 1
        assert alert_ops.send_follow_ups(conn, routing, AS_OF + 4 * DAY) == []
    reminders = rows(db, OutboxMessage, table_of(OutboxMessage).c.kind == "follow_up")
    assert {m.recipient for m in reminders} == {"S2", "wellbeing@force.example"}
    assert json.loads(reminders[0].payload)["follow_up"] == "72h"
    with db.begin() as conn:
        alert_ops.resolve(conn, trim.id, "S2", "false_positive", AS_OF + 5 * DAY)
        assert alert_ops.send_follow_ups(conn, routing, AS_OF + 40 * DAY) == []
    statuses = sorted((f.label, f.status) for f in rows(db, AlertFollowUp))
    # The 72h reminder was queued, never sent: resolving the alert as not needed stops it too
    # (a follow-up is sent only when its message goes out, engine.delivery.dispatch).
    assert statuses == [("28d", "cancelled"), ("72h", "cancelled")]
    reminders = rows(db, OutboxMessage, table_of(OutboxMessage).c.kind == "follow_up")
    assert {m.status for m in reminders} == {"cancelled"}


def test_opting_out_forgets_alerts_and_blanks_the_decision_log(db):
    run(db, [snapshot("S1", **THREE_RULES), snapshot("S2", tier2plus_exposures_30d=3)])
    with db.begin() as conn:
        gone = alert_ops.forget_person(conn, "S1", AS_OF + DAY)
    assert gone == {"alerts": 3, "outbox": 7, "follow_ups": 1, "events": 3, "decisions_erased": 3}
    assert [a.staff_id for a in rows(db, Alert)] == ["S2"]
    assert {o.alert_id for o in rows(db, OutboxMessage)} == {rows(db, Alert)[0].id}
    erased = rows(db, Decision, table_of(Decision).c.staff_id == "S1")
    assert all(d.input is None and d.explanation is None for d in erased)
    with db.connect() as conn:
        checked = verify(conn)
    assert checked.ok and checked.erased == 3


def test_last_good_ruleset_keeps_running_after_a_bad_edit(db, tmp_path):
    folder = copy_rules(tmp_path / "rules")
    keeper = RulesetKeeper(folder)
    with db.begin() as conn:
        good = keeper.refresh(conn, AS_OF).pack
    cluster = folder / "interventions" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace(">= 3", "=> 2"))  # a typo
    with db.begin() as conn:
        active = keeper.refresh(conn, AS_OF + DAY)
    assert active.pack.ruleset_hash == good.ruleset_hash and active.fallback
    assert ["bad operator '=>'" in p.message for p in active.problems] == [True]

    summary = run(db, [snapshot("S1", tier2plus_exposures_30d=3)], pack=active.pack)
    assert summary.alerts_opened == 1  # the good version's threshold (3) still applies

    with db.begin() as conn:  # a new process has no keeper: the database has the good version
        fresh = load_active(conn, folder, AS_OF + 2 * DAY)
    assert fresh.pack.ruleset_hash == good.ruleset_hash and fresh.problems

    cluster.write_text(cluster.read_text().replace("=> 2", ">= 2"))  # fixed, and changed
    with db.begin() as conn:
        fixed = keeper.refresh(conn, AS_OF + 3 * DAY)
    assert not fixed.fallback and fixed.pack.ruleset_hash == load_pack(folder).ruleset_hash
    assert fixed.pack.ruleset_hash != good.ruleset_hash
