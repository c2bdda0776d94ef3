"""The auditors' view: the decision log, the chain's state, checkpoints, and the access log.

An auditor sees every decision: when, which rule and version, which ruleset and criteria,
about whom, what came of it, and which conditions held. What the rule saw (the decision's
input: the person's indicator figures, or the exposure that set it off) and the actual
values in the explanation are exposure detail: they are shown only when the auditor records
an `audit` reason, and that is written to the access log, where the person sees it
(`decision(..., reason=...)`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine.alerts import audit
from engine.oversight.effectiveness import period_bounds
from engine.people.access_log import REASON_LABELS, REASONS, check_reason, record_view
from engine.sqltime import read_datetime
from models import (
    AccessLogEntry,
    Alert,
    AuditCheckpoint,
    CriteriaVersion,
    Decision,
    PersonVersion,
    RulesetVersion,
    table_of,
)

decisions_t = table_of(Decision)
alerts_t = table_of(Alert)
checkpoints_t = table_of(AuditCheckpoint)
criteria_t = table_of(CriteriaVersion)
versions_t = table_of(RulesetVersion)
log_t = table_of(AccessLogEntry)
people_t = table_of(PersonVersion)

DECISION_OUTCOMES = ("alert_opened", "suppressed_open_alert", "suppressed_cooldown")
MAX_LIMIT = 500


class SearchError(ValueError):
    """A search the log can't run, naming the field."""


class NoDecision(LookupError):
    """No decision with that id."""


def _iso(moment: Any) -> str | None:
    value = read_datetime(moment)
    return value.isoformat().replace("+00:00", "Z") if value else None


def _between(column: sa.ColumnElement, start: date | None, end: date | None) -> list:
    """Conditions for London dates `start`..`end`, either end open."""
    if start and end:
        first, after = period_bounds(start, end)
        return [column >= first, column < after]
    if start:
        return [column >= period_bounds(start, start)[0]]
    if end:
        return [column < period_bounds(end, end)[1]]
    return []


def _limit(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit: between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise SearchError("offset: must not be negative")


@dataclass(frozen=True)
class DecisionSearch:
    staff_id: str | None = None
    rule_id: str | None = None
    start: date | None = None  # London dates, both ends included
    end: date | None = None
    outcome: str | None = None  # the decision's: alert_opened, suppressed_...
    alert_outcome: str | None = None  # the alert's recorded outcome (false_positive, ...)
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in DECISION_OUTCOMES:
            raise SearchError(f"outcome: must be one of {', '.join(DECISION_OUTCOMES)}")
        _limit(self.limit, self.offset)


def _names(conn: sa.Connection, staff_ids: set[str]) -> dict[str, str]:
    """Each person's newest display name."""
    names: dict[str, str] = {}
    ids = sorted(staff_ids)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(people_t.c.staff_id, people_t.c.display_name)
            .where(people_t.c.staff_id.in_(ids[start : start + 500]))
            .order_by(people_t.c.staff_id, people_t.c.valid_from)
        )
        names.update({staff_id: name for staff_id, name in rows})
    return names


def search_decisions(engine: sa.Engine, search: DecisionSearch) -> dict[str, Any]:
    """Decisions matching `search`, newest first, with the total that matched."""
    conditions = []
    if search.staff_id:
        conditions.append(decisions_t.c.staff_id == search.staff_id)
    if search.rule_id:
        conditions.append(decisions_t.c.rule_id == search.rule_id)
    if search.outcome:
        conditions.append(decisions_t.c.outcome == search.outcome)
    conditions += _between(decisions_t.c.at, search.start, search.end)
    base = sa.select(decisions_t, alerts_t.c.outcome.label("alert_outcome")).outerjoin(
        alerts_t, alerts_t.c.id == decisions_t.c.alert_id
    )
    if search.alert_outcome:
        conditions.append(alerts_t.c.outcome == search.alert_outcome)
    base = base.where(*conditions)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar()
        rows = conn.execute(
            base.order_by(decisions_t.c.seq.desc()).limit(search.limit).offset(search.offset)
        ).all()
        names = _names(conn, {r.staff_id for r in rows})
    return {"total": int(total), "decisions": [_summary(row, names) for row in rows]}


def _summary(row: Any, names: dict[str, str]) -> dict[str, Any]:
    return {
        "decision_id": row.decision_id,
        "seq": row.seq,
        "at": _iso(row.at),
        "recorded_at": _iso(row.recorded_at),
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "ruleset_hash": row.ruleset_hash,
        "criteria_hash": row.criteria_hash,
        "staff_id": row.staff_id,
        "display_name": names.get(row.staff_id),
        "subject": row.subject,
        "outcome": row.outcome,
        "alert_id": row.alert_id,
        "alert_outcome": row.alert_outcome,
        "erased": row.erased_at is not None,
    }


def _conditions(explanation: dict[str, Any], with_values: bool) -> dict[str, Any]:
    """The explanation tree; without values, each condition keeps its field, operator,
    threshold and result but not the person's actual figure."""
    if "group" in explanation:
        items = [_conditions(item, with_values) for item in explanation["items"]]
        return {**{k: v for k, v in explanation.items() if k != "items"}, "items": items}
    if with_values:
        return dict(explanation)
    return {k: v for k, v in explanation.items() if k != "actual"}


def decision(
    engine: sa.Engine,
    decision_id: str,
    *,
    viewer_id: str,
    at: datetime,
    reason: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One decision with its explanation and its ruleset and criteria versions.

    With a `reason` (it must be `audit`) the input and the actual values are included, the
    stored input is replayed through its ruleset, and an access-log entry is written for the
    person. :raise NoDecision: no such decision. :raise SearchError: a reason other than audit.
    """
    if reason is not None:
        reason, note = check_reason(reason, note)
        if reason != "audit":
            raise SearchError("reason: an auditor looks at what a decision saw only for audit")
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(decisions_t, alerts_t.c.outcome.label("alert_outcome"))
            .outerjoin(alerts_t, alerts_t.c.id == decisions_t.c.alert_id)
            .where(decisions_t.c.decision_id == decision_id)
        ).first()
        if row is None:
            raise NoDecision(decision_id)
        names = _names(conn, {row.staff_id})
        ruleset = conn.execute(
            sa.select(versions_t.c.rules, versions_t.c.first_loaded_at, versions_t.c.source)
            .where(versions_t.c.ruleset_hash == row.ruleset_hash)
            .order_by(versions_t.c.first_loaded_at)
            .limit(1)
        ).first()
        criteria = None
        if row.criteria_hash:
            criteria = conn.execute(
                sa.select(criteria_t.c.version, criteria_t.c.first_used_at).where(
                    criteria_t.c.version == row.criteria_hash
                )
            ).first()
        with_detail = reason is not None and row.input is not None
        if with_detail:
            record_view(conn, viewer_id, row.staff_id, reason, note, at)
    rule = None
    if ruleset is not None:
        rule = next((r for r in json.loads(ruleset.rules) if r.get("id") == row.rule_id), None)
    explanation = json.loads(row.explanation) if row.explanation else None
    found = {
        **_summary(row, names),
        "explanation": _conditions(explanation, with_detail) if explanation else None,
        "detail_shown": with_detail,
        "input": json.loads(row.input) if with_detail else None,
        "ruleset": {
            "hash": row.ruleset_hash,
            "stored": ruleset is not None,
            "first_loaded_at": _iso(ruleset.first_loaded_at) if ruleset else None,
            "source": ruleset.source if ruleset else None,
            "rule": rule,
        },
        "criteria": {
            "version": row.criteria_hash,
            "stored": criteria is not None,
            "first_used_at": _iso(criteria.first_used_at) if criteria else None,
        },
        "entry_hash": row.entry_hash,
        "prev_hash": row.prev_hash,
    }
    if with_detail:
        found["replay"] = _replay(engine, row.decision_id)
    return found


def _replay(engine: sa.Engine, decision_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        try:
            result = audit.replay(conn, decision_id)
        except audit.AuditError as error:
            return {"same": None, "differences": [str(error)]}
    return {"same": result.same, "differences": result.differences}


# --- the chain -------------------------------------------------------------------------------


def chain_status(engine: sa.Engine, key: bytes | None) -> dict[str, Any]:
    """`audit verify` as a document: whether the chain holds, and the first bad entry."""
    with engine.connect() as conn:
        result = audit.verify(conn, key)
        bad = None
        if result.bad_seq is not None:
            bad = conn.execute(
                sa.select(decisions_t.c.decision_id).where(decisions_t.c.seq == result.bad_seq)
            ).scalar()
    return {
        "ok": result.ok,
        "entries": result.entries,
        "erased": result.erased,
        "problem": result.problem,
        "first_bad_seq": result.bad_seq,
        "first_bad_decision_id": bad,
        "notes": list(result.notes),
        "key_checked": key is not None,
    }


def checkpoints(engine: sa.Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Signed checkpoints, newest first, each with whether the log still has the entry it
    signed (signatures are checked by `chain_status`, which has the key)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(checkpoints_t, decisions_t.c.entry_hash.label("now_hash"))
            .outerjoin(decisions_t, decisions_t.c.seq == checkpoints_t.c.seq)
            .order_by(checkpoints_t.c.created_at.desc(), checkpoints_t.c.id.desc())
            .limit(limit)
        ).all()
    return [
        {
            "id": r.id,
            "seq": r.seq,
            "entry_hash": r.entry_hash,
            "created_at": _iso(r.created_at),
            "key_id": r.key_id,
            "signature": r.signature,
            "algorithm": "HMAC-SHA256",
            "entry_matches": (audit.GENESIS if r.seq == 0 else r.now_hash) == r.entry_hash,
        }
        for r in rows
    ]


# --- the access log --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessSearch:
    staff_id: str | None = None  # whose record
    viewer_id: str | None = None  # who looked
    reason: str | None = None
    start: date | None = None
    end: date | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.reason is not None and self.reason not in REASONS:
            raise SearchError(f"reason: must be one of {', '.join(REASONS)}")
        _limit(self.limit, self.offset)


def search_access_log(engine: sa.Engine, search: AccessSearch) -> dict[str, Any]:
    """Who viewed whose record, when and why, newest first, with the total that matched."""
    conditions = []
    if search.staff_id:
        conditions.append(log_t.c.staff_id == search.staff_id)
    if search.viewer_id:
        conditions.append(log_t.c.viewer_id == search.viewer_id)
    if search.reason:
        conditions.append(log_t.c.reason == search.reason)
    conditions += _between(log_t.c.at, search.start, search.end)
    base = sa.select(log_t).where(*conditions)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar()
        rows = conn.execute(
            base.order_by(log_t.c.at.desc(), log_t.c.id.desc())
            .limit(search.limit)
            .offset(search.offset)
        ).all()
        names = _names(conn, {r.staff_id for r in rows} | {r.viewer_id for r in rows})
    return {
        "total": int(total),
        "entries": [
            {
                "id": r.id,
                "at": _iso(r.at),
                "viewer_id": r.viewer_id,
                "viewer_name": names.get(r.viewer_id, r.viewer_id),
                "staff_id": r.staff_id,
                "staff_name": names.get(r.staff_id, r.staff_id),
                "reason": r.reason,
                "reason_label": REASON_LABELS[r.reason],
                "note": r.note,
                "what": r.what,
            }
            for r in rows
        ],
    }
