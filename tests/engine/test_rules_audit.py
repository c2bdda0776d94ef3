"""The decision log: every kind of tampering is found and named; replay; signed checkpoints."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from engine import audit
from engine.decisions import decide
from models import AuditCheckpoint, AuditHead, Decision
from tests.engine.rulekit import AS_OF, database, default_pack, snapshot

decisions = Decision.__table__
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
        conn.execute(AuditHead.__table__.update().values(entry_hash=previous))
    result = checked(db, KEY)
    assert result.bad_seq == 5 and "the chain was rewritten" in result.problem
    # ...and deleting the stored checkpoints does not help: the exported copy still holds.
    change(db, AuditCheckpoint.__table__.delete())
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
    change(db, AuditCheckpoint.__table__.update().values(signature="00" * 32))
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
    assert result.differences == ["rule cluster-30d does not fire on the stored input now"]
    with pytest.raises(audit.AuditError, match="no decision nope"), db.connect() as conn:
        audit.replay(conn, "nope")


def test_erasing_a_person_keeps_the_chain_verifiable(db):
    with db.begin() as conn:
        assert audit.erase(conn, "P2", AS_OF) == 1
    result = checked(db)
    assert result.ok and result.erased == 1
    with pytest.raises(audit.AuditError, match="erased"), db.connect() as conn:
        audit.replay(conn, "2")
