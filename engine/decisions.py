"""Evaluation: snapshots and new exposures in; decisions, alerts and outbox rows out.

`evaluate` writes everything through the caller's connection, so one transaction holds the
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

from engine import audit
from engine.alerts import (
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


def evaluate(
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
    """Evaluate `pack` on `snapshots` (dicts of snapshot fields with `staff_id`) and on
    `exposures` (dicts with staff_id, category, tier, role, points, feed, at and an identity:
    `incident_key`, or feed + ref), at `as_of`. An exposure gets the fields of its person's
    snapshot from `snapshots`. Writes through `conn`; the caller commits.

    A long-running process passes the same `marks` every time (see `engine.rules.marks`).
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    snapshots = list({str(s["staff_id"]): s for s in snapshots}.values())  # one per person
    exposures = list(exposures)
    summary = EvaluationSummary(as_of, pack.ruleset_hash, len(snapshots), exposures=len(exposures))
    summary.rules = len(pack.rules)
    remember(conn, pack, now)
    has = {rule.on for rule in pack.rules}
    marks = marks if marks is not None else Marks()
    fields = list(tested_fields(pack, "snapshot"))
    fresh = (
        marks.changed(conn, pack.ruleset_hash, fields, snapshots, as_of)
        if "snapshot" in has
        else []
    )
    changed = snapshot_subjects(pack, [snapshot for snapshot, _ in fresh])
    new = _new_exposures(conn, exposures)
    by_staff = {str(s["staff_id"]): s for s in snapshots}
    exposure_subjects = []
    if "exposure" in has:
        exposure_subjects = [
            exposure_subject(pack, e, by_staff.get(str(e["staff_id"])), as_of) for e in new.values()
        ]
    result = match(pack, changed + exposure_subjects)
    summary.people_evaluated = len(changed)
    summary.exposures_evaluated = len(exposure_subjects)
    summary.disagreements = result.disagreements
    rechecks = _record(conn, pack, result.firings, as_of, now, criteria_hash, summary)
    marks.record(conn, [(str(s["staff_id"]), values) for s, values in fresh], rechecks)
    if new:
        rows = [
            {"exposure_key": k, "staff_id": str(e["staff_id"]), "evaluated_at": now}
            for k, e in new.items()
        ]
        conn.execute(exposure_marks_t.insert(), rows)
    summary.duration_s = time.perf_counter() - started
    conn.execute(
        runs_t.insert().values(
            ruleset_hash=pack.ruleset_hash,
            as_of=as_of,
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
    return summary


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
    """Decide each firing's outcome, then write alerts, decisions, outbox rows and events."""
    if not firings:
        return {}
    open_now, last_opened = _alert_state(conn, firings)
    rechecks: dict[str, datetime] = {}
    plans: list[tuple[Firing, str, str]] = []  # firing, decision id, outcome
    opening: dict[tuple[str, str], int] = {}  # (staff, rule) -> index into new alerts
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
            outcome = "alert_opened"
            opening[key] = len(opening)
        plans.append((firing, uuid.uuid4().hex, outcome))
    people = PeopleDirectory.load(conn, {staff for staff, _ in opening})
    alert_rows, recipients = [], []
    for firing, decision_id, outcome in plans:
        if outcome != "alert_opened":
            continue
        rule, staff = firing.rule, firing.subject.staff_id
        sent_to = recipients_for(people, pack.routing, rule.notify, staff, as_of)
        recipients.append(sent_to)
        alert_rows.append(
            {
                "staff_id": staff,
                "rule_id": rule.id,
                "rule_version": rule.version,
                "ruleset_hash": pack.ruleset_hash,
                "severity": rule.severity,
                "title": rule.title,
                "status": "open",
                "open_key": f"{rule.id}:{staff}",
                "opened_at": as_of,
                "decision_id": decision_id,
                "notify": json.dumps(list(rule.notify)),
                "recipients": json.dumps(sent_to),
            }
        )
    new_ids: list[int] = []
    if alert_rows:
        insert = alerts_t.insert().returning(alerts_t.c.id, sort_by_parameter_order=True)
        new_ids = list(conn.execute(insert, alert_rows).scalars())
    entries, outbox, events, follow_ups = [], [], [], []
    for firing, decision_id, outcome in plans:
        rule, staff = firing.rule, firing.subject.staff_id
        key = (staff, rule.id)
        alert_id = new_ids[opening[key]] if key in opening else open_now.get(key)
        entries.append(
            {
                "decision_id": decision_id,
                "at": as_of,
                "recorded_at": now,
                "rule_id": rule.id,
                "rule_version": rule.version,
                "ruleset_hash": pack.ruleset_hash,
                "criteria_hash": criteria_hash,
                "staff_id": staff,
                "subject": firing.subject.kind,
                "outcome": outcome,
                "alert_id": alert_id,
                "input": canonical_json(firing.subject.record()),
                "explanation": canonical_json(firing.explanation),
            }
        )
        if outcome != "alert_opened":
            continue
        index = opening[key]
        alert = {**alert_rows[index], "id": alert_id}
        name = people.name(staff, force_day(as_of))
        outbox += outbox_rows(
            alert_id, "alert", recipients[index], payload("alert", alert, name), now
        )
        sent_to = [r["to"] for r in recipients[index]]
        events.append(
            event_row(alert_id, now, "system", "opened", decision_id=decision_id, to=sent_to)
        )
        for label, delay in zip(rule.definition["follow_up"], rule.follow_up, strict=True):
            follow_ups.append(
                {"alert_id": alert_id, "label": label, "due_at": as_of + delay, "status": "pending"}
            )
    audit.append(conn, entries, now)
    for table, rows in ((outbox_t, outbox), (events_t, events), (follow_ups_t, follow_ups)):
        if rows:
            conn.execute(table.insert(), rows)
    summary.decisions = len(entries)
    summary.alerts_opened = len(new_ids)
    summary.alert_ids = new_ids
    summary.suppressed = len(entries) - len(new_ids)
    return rechecks
