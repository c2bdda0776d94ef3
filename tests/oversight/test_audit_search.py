"""The auditors' view: decision search, one decision with and without its detail, the
chain's state, checkpoints and the access log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import audit
from engine.alerts.decisions import decide
from engine.oversight.audit_search import (
    AccessSearch,
    DecisionSearch,
    NoDecision,
    SearchError,
    chain_status,
    checkpoints,
    decision,
    search_access_log,
    search_decisions,
)
from engine.people.access_log import AccessReasonError, access_log_for, record_view
from engine.rules.active import remember
from models import Decision, table_of
from tests.engine.rulekit import AS_OF, add_people, database, default_pack, snapshot

KEY = b"the auditors' key"
LATER = AS_OF + timedelta(days=40)


@pytest.fixture
def db(database_url):
    """P1-P3 meet the cluster rule on 2 June 2025; P1 again 40 days later (an open alert:
    suppressed); P4 meets the combined indicator too."""
    engine = database(database_url)
    pack = default_pack()
    add_people(engine, *({"staff_id": f"P{i}"} for i in range(1, 5)), {"staff_id": "AUD"})
    with engine.begin() as conn:
        remember(conn, pack, AS_OF)
        first = [snapshot(f"P{i}", tier2plus_exposures_30d=4) for i in range(1, 4)]
        first.append(snapshot("P4", trauma_points_90d=14.0, cancelled_rest_days_90d=3))
        decide(conn, pack, first, as_of=AS_OF, now=AS_OF)
        decide(conn, pack, [snapshot("P1", tier2plus_exposures_30d=5)], as_of=LATER, now=LATER)
    yield engine
    engine.dispose()


def found(engine, **options):
    return [(d["staff_id"], d["rule_id"], d["outcome"]) for d in
            search_decisions(engine, DecisionSearch(**options))["decisions"]]  # fmt: skip


def test_decisions_by_person_rule_date_and_outcome_newest_first(db):
    everything = search_decisions(db, DecisionSearch())
    assert everything["total"] == 5
    assert [d["seq"] for d in everything["decisions"]] == [5, 4, 3, 2, 1]
    assert found(db, staff_id="P1") == [
        ("P1", "cluster-30d", "suppressed_open_alert"),
        ("P1", "cluster-30d", "alert_opened"),
    ]
    assert found(db, rule_id="combined-indicator") == [("P4", "combined-indicator", "alert_opened")]
    assert found(db, outcome="suppressed_open_alert") == [
        ("P1", "cluster-30d", "suppressed_open_alert")
    ]
    assert len(found(db, start=date(2025, 6, 2), end=date(2025, 6, 2))) == 4
    assert len(found(db, start=date(2025, 6, 3))) == 1
    assert found(db, end=date(2025, 6, 1)) == []
    page = search_decisions(db, DecisionSearch(limit=2, offset=2))
    assert page["total"] == 5 and [d["seq"] for d in page["decisions"]] == [3, 2]


def test_bad_search_fields_are_named():
    with pytest.raises(SearchError, match="^outcome: "):
        DecisionSearch(outcome="fired")
    with pytest.raises(SearchError, match="^limit: "):
        DecisionSearch(limit=0)
    with pytest.raises(SearchError, match="^reason: "):
        AccessSearch(reason="curious")


def first_decision(engine, staff_id="P4"):
    return search_decisions(engine, DecisionSearch(staff_id=staff_id))["decisions"][0]


def leaves(node):
    if "items" in node:
        for item in node["items"]:
            yield from leaves(item)
    else:
        yield node


def test_without_a_reason_a_decision_shows_why_but_not_what_it_saw(db):
    ref = first_decision(db)["decision_id"]
    shown = decision(db, ref, viewer_id="AUD", at=LATER)
    assert shown["rule_id"] == "combined-indicator" and shown["outcome"] == "alert_opened"
    assert shown["ruleset"]["stored"] and shown["ruleset"]["rule"]["id"] == "combined-indicator"
    assert shown["ruleset"]["hash"] == default_pack().ruleset_hash
    assert shown["input"] is None and not shown["detail_shown"]
    conditions = list(leaves(shown["explanation"]))
    assert {c["field"] for c in conditions} >= {"trauma_points_90d"}
    assert all("actual" not in c for c in conditions)
    assert {"field", "op", "value", "result"} <= set(conditions[0])
    assert "replay" not in shown
    assert access_log_for(db, "P4") == []


def test_an_audit_reason_shows_the_input_replays_it_and_is_logged_for_the_person(db):
    ref = first_decision(db)["decision_id"]
    shown = decision(db, ref, viewer_id="AUD", at=LATER, reason="audit", note="annual check")
    assert shown["detail_shown"]
    assert shown["input"]["values"]["trauma_points_90d"] == 14.0
    assert any(c.get("actual") == 14.0 for c in leaves(shown["explanation"]))
    assert shown["replay"] == {"same": True, "differences": []}
    log = access_log_for(db, "P4")
    assert [(e["viewer_id"], e["reason"], e["note"]) for e in log] == [
        ("AUD", "audit", "annual check")
    ]


def test_only_an_audit_reason_opens_the_detail(db):
    ref = first_decision(db)["decision_id"]
    with pytest.raises(SearchError, match="^reason: "):
        decision(db, ref, viewer_id="AUD", at=LATER, reason="welfare_conversation")
    with pytest.raises(AccessReasonError, match="^reason: "):
        decision(db, ref, viewer_id="AUD", at=LATER, reason="nosy")
    with pytest.raises(NoDecision):
        decision(db, "no-such-decision", viewer_id="AUD", at=LATER)
    assert access_log_for(db, "P4") == []


def test_an_erased_decision_has_nothing_to_show_and_logs_nothing(db):
    with db.begin() as conn:
        audit.erase(conn, "P4", LATER)
    ref = first_decision(db)["decision_id"]
    shown = decision(db, ref, viewer_id="AUD", at=LATER, reason="audit")
    assert shown["erased"] and shown["input"] is None and shown["explanation"] is None
    assert access_log_for(db, "P4") == []


def test_the_chain_status_names_the_first_bad_entry(db):
    status = chain_status(db, KEY)
    assert status["ok"] and status["entries"] == 5 and status["first_bad_seq"] is None
    table = table_of(Decision)
    with db.begin() as conn:
        conn.execute(table.update().where(table.c.seq == 3).values(rule_id="edited"))
        bad = conn.execute(sa.select(table.c.decision_id).where(table.c.seq == 3)).scalar()
    status = chain_status(db, KEY)
    assert not status["ok"]
    assert status["first_bad_seq"] == 3 and status["first_bad_decision_id"] == bad
    assert "do not match its hash" in status["problem"]


def test_checkpoints_newest_first_and_whether_the_log_still_has_their_entry(db):
    later = LATER + timedelta(days=40)
    with db.begin() as conn:
        audit.write_checkpoint(conn, KEY, LATER)
        snapshots = [snapshot("P2", tier2plus_exposures_30d=6)]
        decide(conn, default_pack(), snapshots, as_of=later, now=later)
        audit.write_checkpoint(conn, KEY, later)
    listed = checkpoints(db)
    assert [c["seq"] for c in listed] == [6, 5]
    assert all(c["entry_matches"] and c["key_id"] == audit.key_id(KEY) for c in listed)
    table = table_of(Decision)
    with db.begin() as conn:
        conn.execute(table.update().where(table.c.seq == 5).values(entry_hash="0" * 64))
    assert [c["entry_matches"] for c in checkpoints(db)] == [True, False]
    assert chain_status(db, KEY)["first_bad_seq"] == 5


def test_the_access_log_searchable_by_viewer_person_reason_and_date(db):
    day = datetime(2025, 7, 1, 10, tzinfo=UTC)
    with db.begin() as conn:
        record_view(conn, "AUD", "P1", "audit", None, day)
        record_view(conn, "P2", "P1", "welfare_conversation", None, day + timedelta(days=1))
        record_view(conn, "P2", "P3", "other", "covering a shift", day + timedelta(days=2))

    def entries(**options):
        result = search_access_log(db, AccessSearch(**options))
        return [(e["viewer_id"], e["staff_id"], e["reason"]) for e in result["entries"]]

    assert entries() == [
        ("P2", "P3", "other"),
        ("P2", "P1", "welfare_conversation"),
        ("AUD", "P1", "audit"),
    ]
    assert entries(staff_id="P1") == [("P2", "P1", "welfare_conversation"), ("AUD", "P1", "audit")]
    assert entries(viewer_id="AUD") == [("AUD", "P1", "audit")]
    assert entries(reason="other") == [("P2", "P3", "other")]
    assert entries(start=date(2025, 7, 2), end=date(2025, 7, 2)) == [
        ("P2", "P1", "welfare_conversation")
    ]
    first = search_access_log(db, AccessSearch(reason="other"))["entries"][0]
    assert first["viewer_name"] == "Person P2" and first["staff_name"] == "Person P3"
    assert first["note"] == "covering a shift"
