"""The decision log's hash chain: append, verify, replay, signed checkpoints, erasure.

Each decision's `entry_hash` is SHA-256 over a canonical JSON of its columns (the input and
explanation through their digests) and the previous entry's hash. `verify` walks the chain in
`seq` order and names the first entry that was edited, moved, or follows a deleted one; the
head row (updated in the same transaction as every append) catches a cut tail; checkpoints,
signed with HMAC-SHA256, catch a chain rewritten from some point on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.rules.pack import canonical_json, pack_from_definitions
from models import Alert, AuditCheckpoint, AuditHead, Decision, RulesetVersion, table_of

GENESIS = "0" * 64
HASHED = (
    "seq",
    "decision_id",
    "at",
    "recorded_at",
    "rule_id",
    "rule_version",
    "ruleset_hash",
    "criteria_hash",
    "staff_id",
    "subject",
    "outcome",
    "alert_id",
    "input_digest",
    "explanation_digest",
    "prev_hash",
)

decisions_t = table_of(Decision)
head_t = table_of(AuditHead)
checkpoints_t = table_of(AuditCheckpoint)
versions_t = table_of(RulesetVersion)
alerts_t = table_of(Alert)


class AuditError(Exception):
    """The log can't be used for what was asked (missing decision, broken chain, bad key)."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def entry_hash(entry: Mapping[str, Any]) -> str:
    return digest(canonical_json({name: _plain(entry[name]) for name in HASHED}))


# --- appending -------------------------------------------------------------------------------


def lock_head(conn: sa.Connection) -> tuple[int, str]:
    """The chain's last (seq, hash), locked until the caller's transaction ends.

    The no-op UPDATE takes PostgreSQL's row lock and SQLite's write lock before anything is
    read, so two writers can't both extend the same entry.
    """
    locked = conn.execute(head_t.update().where(head_t.c.id == 1).values(seq=head_t.c.seq))
    if not locked.rowcount:
        conn.execute(head_t.insert().values(id=1, seq=0, entry_hash=GENESIS))
    row = conn.execute(sa.select(head_t.c.seq, head_t.c.entry_hash).where(head_t.c.id == 1)).one()
    return row.seq, row.entry_hash


def append(conn: sa.Connection, entries: list[dict[str, Any]], now: datetime) -> None:
    """Chain and insert decisions (each with `input` and `explanation` as JSON text)."""
    if not entries:
        return
    seq, previous = lock_head(conn)
    for entry in entries:
        seq += 1
        entry["seq"] = seq
        entry["input_digest"] = digest(entry["input"])
        entry["explanation_digest"] = digest(entry["explanation"])
        entry["prev_hash"] = previous
        entry["entry_hash"] = previous = entry_hash(entry)
    conn.execute(decisions_t.insert(), entries)
    conn.execute(
        head_t.update().where(head_t.c.id == 1).values(seq=seq, entry_hash=previous, updated_at=now)
    )


def erase(conn: sa.Connection, staff_id: str, now: datetime) -> int:
    """Blank what decisions saw about a person (opt-out); the chain still verifies."""
    return conn.execute(
        decisions_t.update()
        .where(decisions_t.c.staff_id == staff_id, decisions_t.c.erased_at.is_(None))
        .values(input=None, explanation=None, erased_at=now)
    ).rowcount


# --- verifying -------------------------------------------------------------------------------


@dataclass
class Verification:
    entries: int = 0
    erased: int = 0
    problem: str | None = None
    bad_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _rows(conn: sa.Connection, page: int = 2000) -> Iterator[Any]:
    last = -1
    while True:
        rows = conn.execute(
            sa.select(decisions_t)
            .where(decisions_t.c.seq > last)
            .order_by(decisions_t.c.seq)
            .limit(page)
        ).all()
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1].seq


def verify(conn: sa.Connection, key: bytes | None = None) -> Verification:
    """Walk the chain; stop at the first bad entry and say what is wrong with it."""
    result = Verification()
    previous, expected = GENESIS, 1
    for row in _rows(conn):
        name = f"decision {row.decision_id} (seq {row.seq})"
        problem = None
        if row.seq != expected:
            problem = f"{name}: seq {expected} is missing: an entry was deleted or moved"
        elif entry_hash(row._mapping) != row.entry_hash:
            problem = f"{name}: its contents do not match its hash: it was edited or moved"
        elif row.prev_hash != previous:
            problem = (
                f"{name}: does not follow the entry before it: "
                "an entry before it was deleted, edited or reordered"
            )
        elif row.input is not None and digest(row.input) != row.input_digest:
            problem = f"{name}: its input was edited"
        elif row.explanation is not None and digest(row.explanation) != row.explanation_digest:
            problem = f"{name}: its explanation was edited"
        elif (row.input is None or row.explanation is None) and row.erased_at is None:
            problem = f"{name}: its input or explanation was removed without an erasure"
        if problem:
            result.problem, result.bad_seq = problem, row.seq
            return result
        result.entries += 1
        result.erased += row.erased_at is not None
        previous, expected = row.entry_hash, expected + 1
    head = conn.execute(sa.select(head_t).where(head_t.c.id == 1)).first()
    head_seq, head_hash = (head.seq, head.entry_hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (expected - 1, previous):
        result.problem = (
            f"the log ends at seq {expected - 1} but its head records seq {head_seq}: "
            "entries at the end were deleted, or the head was altered"
        )
        result.bad_seq = expected
        return result
    for checkpoint in conn.execute(sa.select(checkpoints_t).order_by(checkpoints_t.c.seq)):
        problem = _check_stored(conn, checkpoint, key)
        if problem:
            result.problem, result.bad_seq = problem, checkpoint.seq
            return result
    if key is None:
        result.notes.append("no audit key: checkpoint signatures were not checked")
    return result


# --- checkpoints -----------------------------------------------------------------------------


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"trauma-tracker audit key:" + key).hexdigest()[:12]


def _document(seq: int, entry: str, created_at: datetime) -> dict[str, Any]:
    return {"seq": seq, "entry_hash": entry, "created_at": _plain(created_at)}


def _sign(key: bytes, document: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical_json(document).encode(), hashlib.sha256).hexdigest()


def write_checkpoint(conn: sa.Connection, key: bytes, now: datetime) -> dict[str, Any]:
    """Sign the chain's current end (after verifying it) and return the exportable document.

    :raise AuditError: the chain is broken; a checkpoint must not vouch for it.
    """
    checked = verify(conn, key)
    if not checked.ok:
        raise AuditError(f"not signing a broken chain: {checked.problem}")
    seq, entry = lock_head(conn)
    document = _document(seq, entry, now)
    signature = _sign(key, document)
    conn.execute(
        checkpoints_t.insert().values(
            seq=seq, entry_hash=entry, created_at=now, key_id=key_id(key), signature=signature
        )
    )
    return {
        "checkpoint": document,
        "algorithm": "HMAC-SHA256",
        "key_id": key_id(key),
        "signature": signature,
    }


def _entry_at(conn: sa.Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    query = sa.select(decisions_t.c.entry_hash).where(decisions_t.c.seq == seq)
    return conn.execute(query).scalar()


def _check_stored(conn: sa.Connection, row: Any, key: bytes | None) -> str | None:
    label = f"checkpoint of {_plain(row.created_at)} (seq {row.seq})"
    # A checkpoint signed with another (older) key can't be checked with this one.
    if key is not None and row.key_id == key_id(key):
        expected = _sign(key, _document(row.seq, row.entry_hash, row.created_at))
        if not hmac.compare_digest(expected, row.signature):
            return f"{label}: its signature does not match: the checkpoint was altered"
    if _entry_at(conn, row.seq) != row.entry_hash:
        return f"{label}: the log no longer has the entry it signed: the chain was rewritten"
    return None


def check_export(conn: sa.Connection, exported: Mapping[str, Any], key: bytes) -> str | None:
    """A problem with an exported checkpoint against this database, or None when it holds."""
    try:
        document = exported["checkpoint"]
        seq, entry = int(document["seq"]), str(document["entry_hash"])
        signature = str(exported["signature"])
    except (KeyError, TypeError, ValueError):
        return (
            "not a checkpoint document (expected checkpoint.seq, checkpoint.entry_hash, signature)"
        )
    if not hmac.compare_digest(_sign(key, document), signature):
        return (
            "its signature does not match this key: the file was altered or signed with another key"
        )
    if _entry_at(conn, seq) != entry:
        return f"the log's entry at seq {seq} is not the one signed: the chain was rewritten"
    return None


# --- replay ----------------------------------------------------------------------------------


@dataclass
class Replay:
    decision_id: str
    rule_id: str
    differences: list[str]
    explanation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what could not be re-derived, and why

    @property
    def same(self) -> bool:
        return not self.differences


def find_decision(conn: sa.Connection, ref: str) -> Any:
    query = sa.select(decisions_t).where(decisions_t.c.decision_id == ref)
    if ref.isdigit():
        query = sa.select(decisions_t).where(decisions_t.c.seq == int(ref))
    row = conn.execute(query).first()
    if row is None:
        raise AuditError(f"no decision {ref}")
    return row


def _stored_differences(row: Any) -> list[str]:
    """What about the stored entry itself no longer holds: its hash over every column (an
    edited outcome, alert, rule, time...), and its input's and explanation's digests."""
    found = []
    if entry_hash(row._mapping) != row.entry_hash:
        found.append(
            "its stored fields do not match its hash: a column was edited after it was "
            "recorded (`audit verify` names the chain's first bad entry)"
        )
    if digest(row.input) != row.input_digest:
        found.append("its stored input does not match its digest: the input was edited")
    if digest(row.explanation) != row.explanation_digest:
        found.append("its stored explanation does not match its digest: it was edited")
    return found


def _outcome_differences(conn: sa.Connection, row: Any) -> tuple[list[str], list[str]]:
    """The stored outcome and alert id against the alerts table: an `alert_opened` decision
    is the one its alert names, a suppressed one is not; `suppressed_open_alert` names the
    alert that was open then, `suppressed_cooldown` none. Returns (differences, notes)."""
    opened = conn.execute(
        sa.select(alerts_t.c.id).where(alerts_t.c.decision_id == row.decision_id)
    ).scalar()
    linked = None
    if row.alert_id is not None:
        linked = conn.execute(
            sa.select(alerts_t.c.id, alerts_t.c.staff_id, alerts_t.c.rule_id).where(
                alerts_t.c.id == row.alert_id
            )
        ).first()
    if opened is not None:
        derived, derived_alert = "alert_opened", opened
    elif row.alert_id is not None and linked is None:
        note = f"alert {row.alert_id} is no longer stored (purged): its outcome is not checked"
        return [], [note]
    elif linked is not None:
        derived, derived_alert = "suppressed_open_alert", linked.id
    elif row.outcome == "alert_opened":
        return ["outcome is stored as alert_opened, but no alert was opened by it"], []
    else:
        derived, derived_alert = "suppressed_cooldown", None
    found = []
    if row.outcome != derived:
        because = (
            f"alert {derived_alert} was opened by this decision"
            if derived == "alert_opened"
            else f"it names alert {derived_alert}, opened by another decision"
            if derived_alert is not None
            else "no alert was open for it"
        )
        found.append(f"outcome is stored as {row.outcome}, but {because}: {derived}")
    if row.alert_id != derived_alert:
        found.append(f"alert id is stored as {row.alert_id}, the alerts say {derived_alert}")
    if linked is not None and linked.staff_id != row.staff_id:
        found.append(f"alert {linked.id} is about {linked.staff_id}, not {row.staff_id}")
    if linked is not None and linked.rule_id != row.rule_id:
        found.append(f"alert {linked.id} is of rule {linked.rule_id}, not {row.rule_id}")
    return found, []


def replay(conn: sa.Connection, ref: str) -> Replay:
    """Re-run one decision from its stored input and ruleset, and compare what that derives
    with every stored field: the entry against its hash and digests, rule and version, the
    person and subject kind against the input, the firing and its explanation, and the
    outcome and alert id against the alerts table. Lists every difference."""
    from engine.rules.matching import Subject, match, tested_fields, typed_values

    row = find_decision(conn, ref)
    if row.input is None or row.explanation is None:
        raise AuditError(f"decision {row.decision_id}: its input was erased (opt-out)")
    stored = conn.execute(
        sa.select(versions_t).where(versions_t.c.ruleset_hash == row.ruleset_hash).limit(1)
    ).first()
    if stored is None:
        raise AuditError(f"decision {row.decision_id}: ruleset {row.ruleset_hash} is not stored")
    pack = pack_from_definitions(json.loads(stored.rules), json.loads(stored.routing))
    differences = _stored_differences(row)
    outcome_differences, notes = _outcome_differences(conn, row)
    differences += outcome_differences
    if pack.ruleset_hash != row.ruleset_hash:
        differences.append(
            f"stored ruleset now hashes to {pack.ruleset_hash}, not {row.ruleset_hash}"
        )
    rule = pack.by_id.get(row.rule_id)
    if rule is None:
        return Replay(
            row.decision_id,
            row.rule_id,
            [*differences, f"rule {row.rule_id} is not in the ruleset"],
            notes=notes,
        )
    if rule.version != row.rule_version:
        differences.append(f"rule version is {rule.version}, the decision used {row.rule_version}")
    record = json.loads(row.input)
    for name, seen in (("staff_id", record["staff_id"]), ("subject", record["kind"])):
        if row._mapping[name] != seen:
            differences.append(f"{name} is stored as {row._mapping[name]}, the input says {seen}")
    values = typed_values(record["values"], tested_fields(pack, record["kind"]))
    result = match(pack, [Subject(record["kind"], record["staff_id"], values, record["values"])])
    differences += [f"engine and explanation disagree: {d}" for d in result.disagreements]
    firing = next((f for f in result.firings if f.rule.id == rule.id), None)
    if firing is None:
        differences.append(f"rule {rule.id} does not fire on the stored input now")
        return Replay(row.decision_id, row.rule_id, differences, notes=notes)
    if firing.explanation != json.loads(row.explanation):
        differences.append("the explanation differs from the stored one")
    return Replay(row.decision_id, row.rule_id, differences, firing.explanation, notes)
