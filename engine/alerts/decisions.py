"""Decisions: the rules run on snapshots and new exposures; decisions, alerts and outbox rows out.

`decide` writes everything through the caller's connection, so one transaction holds the
decisions, their alerts, the alerts' outbox rows and follow-ups, and the run's summary.

Only what changed is evaluated: a person whose tested figures are the same as at their last
evaluation under the same ruleset is skipped (unless a cooldown that held back an alert has
ended since), and each exposure is seen once. Every firing is a decision, explained;
evaluations that fire nothing are only counted in the run's summary.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.alerts import audit
from engine.alerts.lifecycle import (
    PeopleDirectory,
    event_row,
    force_day,
    outbox_rows,
    payload,
    recipients_for,
)
from engine.rules.active import remember
from engine.rules.marks import Marks
from engine.rules.matching import (
    Firing,
    exposure_key,
    exposure_subject,
    match,
    snapshot_subjects,
    tested_fields,
)
from engine.rules.pack import RulePack, canonical_json
from models import (
    Alert,
    AlertEvent,
    AlertFollowUp,
    Exposure,
    ExposureMark,
    OutboxMessage,
    RuleRun,
    table_of,
)

log = logging.getLogger(__name__)

alerts_t = table_of(Alert)
events_t = table_of(AlertEvent)
follow_ups_t = table_of(AlertFollowUp)
outbox_t = table_of(OutboxMessage)
exposure_marks_t = table_of(ExposureMark)
runs_t = table_of(RuleRun)
CHUNK = 500


@dataclass
class EvaluationSummary:
    as_of: datetime
    ruleset: str
    people: int = 0
    people_evaluated: int = 0
    exposures: int = 0
    exposures_evaluated: int = 0
    rules: int = 0
    decisions: int = 0
    alerts_opened: int = 0
    suppressed: int = 0
    duration_s: float = 0.0
    disagreements: list[str] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _new_exposures(conn: sa.Connection, exposures: list[Mapping[str, Any]]):
    keyed = {exposure_key(e): e for e in exposures}
    seen: set[str] = set()
    for chunk in _chunks(list(keyed)):
        query = sa.select(exposure_marks_t.c.exposure_key).where(
            exposure_marks_t.c.exposure_key.in_(chunk)
        )
        seen.update(conn.execute(query).scalars())
    return {key: e for key, e in keyed.items() if key not in seen}


def recent_exposures(conn: sa.Connection, pack: RulePack, as_of: datetime) -> list[dict[str, Any]]:
    """Scored exposures young enough for the pack's exposure rules (the `exposures` table).

    Passing these on every evaluation is enough: each is evaluated once (exposure marks).
    """
    ages = [rule.max_age for rule in pack.rules if rule.on == "exposure" and rule.max_age]
    if not ages:
        return []
    table = table_of(Exposure)
    query = sa.select(table).where(table.c.at > as_of - max(ages), table.c.at <= as_of)
    return [dict(row._mapping) for row in conn.execute(query)]


def decide(
    conn: sa.Connection,
    pack: RulePack,
    snapshots: Iterable[Mapping[str, Any]],
    exposures: Iterable[Mapping[str, Any]] = (),
    *,
    as_of: datetime,
    criteria_hash: str | None = None,
    now: datetime | None = None,
    marks: Marks | None = None,
) -> EvaluationSummary:
    """Run `pack` on `snapshots` (dicts of snapshot fields with `staff_id`) and on `exposures`
    (dicts with staff_id, category, tier, role, points, feed, at and an identity:
    `incident_key`, or feed + ref) at `as_of`, and record a decision for every firing. An
    exposure gets the fields of its person's snapshot from `snapshots`. Writes through
    `conn`; the caller commits.

    A long-running process passes the same `marks` every time (see `engine.rules.marks`).
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    snapshots = list({str(s["staff_id"]): s for s in snapshots}.values())  # one per person
    exposures = list(exposures)
    summary = EvaluationSummary(as_of, pack.ruleset_hash, len(snapshots), exposures=len(exposures))
    summary.rules = len(pack.rules)
    remember(conn, pack, now)
    marks = marks if marks is not None else Marks()

    fresh = _changed_snapshots(conn, pack, marks, snapshots, as_of)
    new = _new_exposures(conn, exposures)
    changed = snapshot_subjects(pack, [snapshot for snapshot, _ in fresh])
    exposure_subjects = _exposure_subjects(pack, new, snapshots, as_of)
    result = match(pack, changed + exposure_subjects)
    summary.people_evaluated = len(changed)
    summary.exposures_evaluated = len(exposure_subjects)
    summary.disagreements = result.disagreements

    rechecks = _record(conn, pack, result.firings, as_of, now, criteria_hash, summary)
    marks.record(conn, [(str(s["staff_id"]), values) for s, values in fresh], rechecks)
    _mark_seen(conn, new, now)
    summary.duration_s = time.perf_counter() - started
    _record_run(conn, pack, summary, now)
    return summary


def _changed_snapshots(conn, pack: RulePack, marks: Marks, snapshots, as_of: datetime):
    """The snapshots whose tested figures changed since their last evaluation under this
    ruleset (or whose cooldown ended), each with the values the marks remember."""
    if not any(rule.on == "snapshot" for rule in pack.rules):
        return []
    fields = list(tested_fields(pack, "snapshot"))
    return marks.changed(conn, pack.ruleset_hash, fields, snapshots, as_of)


def _exposure_subjects(pack: RulePack, new: dict[str, Any], snapshots, as_of: datetime):
    """The new exposures as rule subjects, each with its person's snapshot fields."""
    if not any(rule.on == "exposure" for rule in pack.rules):
        return []
    by_staff = {str(s["staff_id"]): s for s in snapshots}
    return [
        exposure_subject(pack, e, by_staff.get(str(e["staff_id"])), as_of) for e in new.values()
    ]


def _mark_seen(conn: sa.Connection, new: dict[str, Any], now: datetime) -> None:
    """Each new exposure is evaluated once: mark it seen."""
    if new:
        rows = [
            {"exposure_key": k, "staff_id": str(e["staff_id"]), "evaluated_at": now}
            for k, e in new.items()
        ]
        conn.execute(exposure_marks_t.insert(), rows)


def _record_run(conn: sa.Connection, pack: RulePack, summary: EvaluationSummary, now) -> None:
    """The run's summary row (rule_runs), and its log line."""
    conn.execute(
        runs_t.insert().values(
            ruleset_hash=pack.ruleset_hash,
            as_of=summary.as_of,
            started_at=now,
            duration_ms=summary.duration_s * 1000,
            people=summary.people,
            people_evaluated=summary.people_evaluated,
            exposures=summary.exposures,
            exposures_evaluated=summary.exposures_evaluated,
            rules=summary.rules,
            firings=summary.decisions,
            alerts_opened=summary.alerts_opened,
            disagreements=len(summary.disagreements),
        )
    )
    log.info(
        "rules %s: %d people (%d changed), %d new exposures, %d rules, %d decisions, "
        "%d alerts opened in %.3f s",
        pack.ruleset_hash,
        summary.people,
        summary.people_evaluated,
        summary.exposures_evaluated,
        summary.rules,
        summary.decisions,
        summary.alerts_opened,
        summary.duration_s,
    )


# --- recording the firings ---------------------------------------------------------------------

OPENED = "alert_opened"


@dataclass
class _Decision:
    """One firing and what became of it, filled in as it is recorded."""

    firing: Firing
    decision_id: str
    outcome: str  # alert_opened | suppressed_open_alert | suppressed_cooldown
    alert_id: int | None = None  # the alert it opened, or the open one that held it back
    alert: dict[str, Any] | None = None  # the new alert's row (alert_opened only)
    recipients: list[dict[str, Any]] = field(default_factory=list)  # (alert_opened only)

    @property
    def key(self) -> tuple[str, str]:
        return (self.firing.subject.staff_id, self.firing.rule.id)


def _alert_state(conn: sa.Connection, firings: list[Firing]):
    """For the firing (staff, rule) pairs: the unresolved alert's id, and the last opening."""
    staff = sorted({f.subject.staff_id for f in firings})
    open_now: dict[tuple[str, str], int] = {}
    last_opened: dict[tuple[str, str], datetime] = {}
    for chunk in _chunks(staff):
        rows = conn.execute(
            sa.select(
                alerts_t.c.id,
                alerts_t.c.staff_id,
                alerts_t.c.rule_id,
                alerts_t.c.status,
                alerts_t.c.opened_at,
            ).where(alerts_t.c.staff_id.in_(chunk))
        )
        for row in rows:
            key = (row.staff_id, row.rule_id)
            if row.status != "resolved":
                open_now[key] = row.id
            if key not in last_opened or row.opened_at > last_opened[key]:
                last_opened[key] = row.opened_at
    return open_now, last_opened


def _record(conn, pack, firings, as_of, now, criteria_hash, summary) -> dict[str, datetime]:
    """Decide each firing's outcome, then write its alert, decision, outbox rows, event and
    follow-ups. Returns when each person held back by a cooldown is worth evaluating again."""
    if not firings:
        return {}
    open_now, last_opened = _alert_state(conn, firings)
    decisions, rechecks = _outcomes(firings, open_now, last_opened, as_of)
    opened = [d for d in decisions if d.outcome == OPENED]
    people = PeopleDirectory.load(conn, {d.firing.subject.staff_id for d in opened})
    _open_alerts(conn, pack, opened, people, as_of)
    _link_held_back(decisions, opened, open_now)
    audit.append(conn, [_log_entry(d, pack, as_of, now, criteria_hash) for d in decisions], now)
    outbox, events, follow_ups = _deliveries(opened, people, as_of, now)
    for table, rows in ((outbox_t, outbox), (events_t, events), (follow_ups_t, follow_ups)):
        if rows:
            conn.execute(table.insert(), rows)
    summary.decisions = len(decisions)
    summary.alerts_opened = len(opened)
    summary.alert_ids = [d.alert_id for d in opened]
    summary.suppressed = len(decisions) - len(opened)
    return rechecks


def _outcomes(firings, open_now, last_opened, as_of: datetime):
    """Each firing's outcome: held back by an unresolved alert for the same person and rule
    (one already stored, or one an earlier firing here opens), or by the rule's cooldown since
    the last opening; else it opens an alert. Also when each cooldown ends, per person."""
    decisions: list[_Decision] = []
    rechecks: dict[str, datetime] = {}
    opening: set[tuple[str, str]] = set()
    for firing in firings:
        rule, staff = firing.rule, firing.subject.staff_id
        key = (staff, rule.id)
        last = last_opened.get(key)
        if key in open_now or key in opening:
            outcome = "suppressed_open_alert"
        elif last is not None and last > as_of - rule.cooldown:
            outcome = "suppressed_cooldown"
            ends = last + rule.cooldown
            rechecks[staff] = min(rechecks.get(staff, ends), ends)
        else:
            outcome = OPENED
            opening.add(key)
        decisions.append(_Decision(firing, uuid.uuid4().hex, outcome))
    return decisions, rechecks


def _open_alerts(conn, pack: RulePack, opened: list[_Decision], people, as_of) -> None:
    """Insert the new alerts, each routed to its recipients, and give each decision its id."""
    for decision in opened:
        rule, staff = decision.firing.rule, decision.firing.subject.staff_id
        decision.recipients = recipients_for(people, pack.routing, rule.notify, staff, as_of)
        decision.alert = {
            "staff_id": staff,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "ruleset_hash": pack.ruleset_hash,
            "severity": rule.severity,
            "title": rule.title,
            "status": "open",
            "open_key": f"{rule.id}:{staff}",
            "opened_at": as_of,
            "decision_id": decision.decision_id,
            "notify": json.dumps(list(rule.notify)),
            "recipients": json.dumps(decision.recipients),
        }
    if not opened:
        return
    insert = alerts_t.insert().returning(alerts_t.c.id, sort_by_parameter_order=True)
    ids = conn.execute(insert, [d.alert for d in opened]).scalars()
    for decision, alert_id in zip(opened, ids, strict=True):
        decision.alert_id = alert_id


def _link_held_back(decisions: list[_Decision], opened: list[_Decision], open_now) -> None:
    """A held-back decision names the alert that held it back: one opened here, or the
    unresolved one stored (none for a cooldown)."""
    new = {d.key: d.alert_id for d in opened}
    for decision in decisions:
        if decision.outcome != OPENED:
            decision.alert_id = new.get(decision.key, open_now.get(decision.key))


def _log_entry(decision: _Decision, pack: RulePack, as_of, now, criteria_hash) -> dict[str, Any]:
    """The decision's audit-log entry (engine.alerts.audit chains it)."""
    firing = decision.firing
    return {
        "decision_id": decision.decision_id,
        "at": as_of,
        "recorded_at": now,
        "rule_id": firing.rule.id,
        "rule_version": firing.rule.version,
        "ruleset_hash": pack.ruleset_hash,
        "criteria_hash": criteria_hash,
        "staff_id": firing.subject.staff_id,
        "subject": firing.subject.kind,
        "outcome": decision.outcome,
        "alert_id": decision.alert_id,
        "input": canonical_json(firing.subject.record()),
        "explanation": canonical_json(firing.explanation),
    }


def _deliveries(opened: list[_Decision], people, as_of, now):
    """For each new alert: its outbox rows, its `opened` event and its follow-ups."""
    outbox, events, follow_ups = [], [], []
    for decision in opened:
        rule, staff, alert_id = (
            decision.firing.rule,
            decision.firing.subject.staff_id,
            decision.alert_id,
        )
        alert = {**decision.alert, "id": alert_id}
        name = people.name(staff, force_day(as_of))
        body = payload("alert", alert, name)
        outbox += outbox_rows(alert_id, "alert", decision.recipients, body, now)
        sent_to = [r["to"] for r in decision.recipients]
        events.append(
            event_row(
                alert_id, now, "system", "opened", decision_id=decision.decision_id, to=sent_to
            )
        )
        for label, delay in zip(rule.definition["follow_up"], rule.follow_up, strict=True):
            follow_ups.append(
                {"alert_id": alert_id, "label": label, "due_at": as_of + delay, "status": "pending"}
            )
    return outbox, events, follow_ups
