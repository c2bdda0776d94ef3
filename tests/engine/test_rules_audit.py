"""The decision log: every kind of tampering is found and named; replay; signed checkpoints."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import audit
from engine.alerts import lifecycle as alert_ops
from engine.alerts.decisions import decide
from models import AuditCheckpoint, AuditHead, Decision, table_of
from tests.engine.rulekit import AS_OF, database, default_pack, snapshot

decisions = table_of(Decision)
KEY = b"a key only the auditors hold"


@pytest.fixture
def db(database_url):
    """A log of five decisions (seq 1..5), one per person meeting the cluster rule."""
    engine = database(database_url)
    with engine.begin() as conn:
        people = [snapshot(f"P{i}", tier2plus_exposures_30d=3 + i) for i in range(1, 6)]
        decide(conn, default_pack(), people, as_of=AS_OF, now=AS_OF)
    yield engine
    engine.dispose()


def change(engine, *statements):
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def checked(engine, key=None):
    with engine.connect() as conn:
        return audit.verify(conn, key)


def at_seq(seq):
    return decisions.c.seq == seq


def test_an_untouched_log_verifies(db):
    result = checked(db)
    assert result.ok and result.entries == 5


TAMPERING = {
    "edit": (
        lambda: [decisions.update().where(at_seq(3)).values(outcome="suppressed_cooldown")],
        3,
        "contents do not match its hash",
    ),
    "edit the input": (
        lambda: [decisions.update().where(at_seq(2)).values(input='{"values": {}}')],
        2,
        "its input was edited",
    ),
    "edit the explanation": (
        lambda: [decisions.update().where(at_seq(4)).values(explanation="{}")],
        4,
        "its explanation was edited",
    ),
    "blank the input": (
        lambda: [decisions.update().where(at_seq(4)).values(input=None)],
        4,
        "removed without an erasure",
    ),
    "delete": (lambda: [decisions.delete().where(at_seq(3))], 4, "seq 3 is missing"),
    "delete the last": (
        lambda: [decisions.delete().where(at_seq(5))],
        5,
        "the log ends at seq 4 but its head records seq 5",
    ),
    "reorder": (
        lambda: [
            decisions.update().where(at_seq(2)).values(seq=-2),
            decisions.update().where(at_seq(3)).values(seq=2),
            decisions.update().where(at_seq(-2)).values(seq=3),
        ],
        2,
        "contents do not match its hash: it was edited or moved",
    ),
}


def test_each_kind_of_tampering_is_found_and_the_first_bad_entry_named(db):
    with db.connect() as conn:
        original = [dict(r._mapping) for r in conn.execute(sa.select(decisions))]
    for kind, (tamper, bad_seq, words) in TAMPERING.items():
        change(db, *tamper())
        result = checked(db)
        assert (result.bad_seq, words in (result.problem or "")) == (bad_seq, True), (kind, result)
        with db.connect() as conn:
            named = conn.execute(sa.select(decisions.c.decision_id).where(at_seq(bad_seq))).scalar()
        if named is not None:  # the entry now at that place is the one named
            assert f"decision {named} (seq {bad_seq})" in result.problem, kind
        change(db, decisions.delete(), decisions.insert().values(original))  # put it back
        assert checked(db).ok, kind


def test_a_rehashed_rewrite_is_caught_by_a_signed_checkpoint(db):
    with db.begin() as conn:
        exported = audit.write_checkpoint(conn, KEY, AS_OF)
    assert exported["checkpoint"]["seq"] == 5
    # A careful forger edits entry 3 and recomputes every hash after it, and the head.
    with db.begin() as conn:
        rows = conn.execute(sa.select(decisions).order_by(decisions.c.seq)).all()
        previous = rows[1].entry_hash
        for row in rows[2:]:
            entry = dict(row._mapping)
            if entry["seq"] == 3:
                entry["outcome"] = "suppressed_cooldown"
            entry["prev_hash"] = previous
            entry["entry_hash"] = previous = audit.entry_hash(entry)
            conn.execute(decisions.update().where(at_seq(entry["seq"])).values(entry))
        conn.execute(table_of(AuditHead).update().values(entry_hash=previous))
    result = checked(db, KEY)
    assert result.bad_seq == 5 and "the chain was rewritten" in result.problem
    # ...and deleting the stored checkpoints does not help: the exported copy still holds.
    change(db, table_of(AuditCheckpoint).delete())
    assert checked(db, KEY).ok
    with db.connect() as conn:
        problem = audit.check_export(conn, exported, KEY)
    assert "the log's entry at seq 5 is not the one signed" in problem


def test_checkpoint_signatures_need_the_right_key(db):
    with db.begin() as conn:
        exported = audit.write_checkpoint(conn, KEY, AS_OF)
    with db.connect() as conn:
        assert audit.check_export(conn, exported, KEY) is None
        assert "signature does not match" in audit.check_export(conn, exported, b"another key")
        forged = json.loads(json.dumps(exported))
        forged["checkpoint"]["seq"] = 4
        assert "signature does not match" in audit.check_export(conn, forged, KEY)
    change(db, table_of(AuditCheckpoint).update().values(signature="00" * 32))
    assert "checkpoint was altered" in checked(db, KEY).problem


def test_a_broken_chain_is_never_signed(db):
    change(db, decisions.delete().where(at_seq(2)))
    with pytest.raises(audit.AuditError, match="not signing a broken chain"), db.begin() as conn:
        audit.write_checkpoint(conn, KEY, AS_OF)


def test_replay_reproduces_a_decision(db):
    with db.connect() as conn:
        row = conn.execute(sa.select(decisions).where(at_seq(3))).first()
        by_id = audit.replay(conn, row.decision_id)
        by_seq = audit.replay(conn, "3")
    assert by_id.same and by_seq.same, by_id.differences
    assert by_id.explanation == json.loads(row.explanation)


def test_replay_shows_what_differs(db):
    with db.connect() as conn:
        row = conn.execute(sa.select(decisions).where(at_seq(1))).first()
    record = json.loads(row.input)
    record["values"]["tier2plus_exposures_30d"] = 2
    change(db, decisions.update().where(at_seq(1)).values(input=json.dumps(record)))
    with db.connect() as conn:
        result = audit.replay(conn, row.decision_id)
    assert result.differences == [
        "its stored input does not match its digest: the input was edited",
        "rule cluster-30d does not fire on the stored input now",
    ]
    with pytest.raises(audit.AuditError, match="no decision nope"), db.connect() as conn:
        audit.replay(conn, "nope")


def test_erasing_a_person_keeps_the_chain_verifiable(db):
    with db.begin() as conn:
        assert audit.erase(conn, "P2", AS_OF) == 1
    result = checked(db)
    assert result.ok and result.erased == 1
    with pytest.raises(audit.AuditError, match="erased"), db.connect() as conn:
        audit.replay(conn, "2")


def rehashed(engine, seq, **values):
    """Edit a decision and recompute its hash, as a careful forger would."""
    with engine.begin() as conn:
        entry = dict(conn.execute(sa.select(decisions).where(at_seq(seq))).one()._mapping)
        entry.update(values)
        entry["entry_hash"] = audit.entry_hash(entry)
        conn.execute(decisions.update().where(at_seq(seq)).values(entry))


def replayed(engine, ref):
    with engine.connect() as conn:
        return audit.replay(conn, ref)


def test_replay_compares_the_stored_outcome_and_alert(db):
    with db.connect() as conn:
        row = conn.execute(sa.select(decisions).where(at_seq(3))).one()
    assert (row.outcome, replayed(db, "3").same) == ("alert_opened", True)

    change(db, decisions.update().where(at_seq(3)).values(outcome="suppressed_cooldown"))
    result = replayed(db, "3")

    assert not result.same
    assert result.differences == [
        "its stored fields do not match its hash: a column was edited after it was recorded "
        "(`audit verify` names the chain's first bad entry)",
        f"outcome is stored as suppressed_cooldown, but alert {row.alert_id} was opened by "
        "this decision: alert_opened",
    ]
    # Rehashed, the edit still shows: the alerts table says what the outcome was.
    rehashed(db, 3, outcome="suppressed_open_alert", alert_id=None)
    assert replayed(db, "3").differences == [
        f"outcome is stored as suppressed_open_alert, but alert {row.alert_id} was opened by "
        "this decision: alert_opened",
        f"alert id is stored as None, the alerts say {row.alert_id}",
    ]
    rehashed(db, 3, outcome="alert_opened", alert_id=row.alert_id, staff_id="P9")
    assert replayed(db, "3").differences == [
        f"alert {row.alert_id} is about P3, not P9",
        "staff_id is stored as P9, the input says P3",
    ]


def test_suppressed_decisions_replay_the_same_and_an_edit_to_them_shows(db):
    later = AS_OF + timedelta(days=1)
    with db.begin() as conn:  # P1 still meets the rule while its alert is open
        decide(conn, default_pack(), [snapshot("P1", tier2plus_exposures_30d=9)], as_of=later)
        (open_alert,) = [a for a in alert_ops.list_alerts(conn) if a["staff_id"] == "P1"]
        alert_ops.resolve(conn, open_alert["alert_id"], "S2", "referred", later)
    with db.begin() as conn:  # ...and again once it was resolved, inside the cooldown
        decide(
            conn,
            default_pack(),
            [snapshot("P1", tier2plus_exposures_30d=10)],
            as_of=later + timedelta(days=1),
        )
    with db.connect() as conn:
        rows = conn.execute(sa.select(decisions).where(decisions.c.seq > 5)).all()
    assert [(r.outcome, r.alert_id) for r in rows] == [
        ("suppressed_open_alert", open_alert["alert_id"]),
        ("suppressed_cooldown", None),
    ]
    assert replayed(db, "6").same and replayed(db, "7").same

    rehashed(db, 7, outcome="alert_opened")
    assert replayed(db, "7").differences == [
        "outcome is stored as alert_opened, but no alert was opened by it"
    ]
    with db.connect() as conn:
        other = conn.execute(sa.select(decisions.c.alert_id).where(at_seq(2))).scalar_one()
    rehashed(db, 6, alert_id=other)
    assert replayed(db, "6").differences == [f"alert {other} is about P2, not P1"]
