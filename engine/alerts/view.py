"""Alerts as the web shows them: the list a recipient sees, and one alert explained.

An alert's explanation is the decision's stored per-condition explanation (engine.rules.
conditions.explain): each condition with its field, operator, threshold, the value the rule
saw and the result, put into words ("12-month points 14, at or above 12"). Who it went to
comes from the alert's resolved recipients and its outbox rows; its history from
alert_events. Nothing here decides who may see an alert: web.access does, with
`recipients_of`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.alerts.lifecycle import OUTCOMES
from engine.rules.conditions import leaves
from engine.rules.fields import AGE_FIELD
from engine.sqltime import read_datetime
from models import Alert, AlertEvent, Decision, OutboxMessage, PersonVersion, table_of
from models.db import connected

alerts_t = table_of(Alert)
events_t = table_of(AlertEvent)
decisions_t = table_of(Decision)
outbox_t = table_of(OutboxMessage)
people_t = table_of(PersonVersion)

STATUS_FILTERS = ("open", "acknowledged", "resolved", "unresolved", "all")
OUTCOME_LABELS = {
    "support_offered": "Support offered",
    "referred": "Referred",
    "declined": "Declined",
    "no_action_needed": "No action needed",
    "false_positive": "False positive",
}
assert set(OUTCOME_LABELS) == set(OUTCOMES)

_PERIODS = {"7d": "7-day", "30d": "30-day", "90d": "90-day", "365d": "12-month", "5y": "5-year"}
_IN = {"30d": "30 days", "90d": "90 days", "365d": "12 months"}
FIELD_LABELS: dict[str, str] = {
    **{f"trauma_points_{w}": f"{p} points" for w, p in _PERIODS.items()},
    **{f"exposures_{w}": f"{p} exposures" for w, p in _PERIODS.items()},
    **{f"tier3_exposures_{w}": f"tier-3 exposures in {_IN[w]}" for w in ("30d", "365d")},
    "tier2plus_exposures_30d": "tier-2-or-higher exposures in 30 days",
    **{f"cancelled_rest_days_{w}": f"cancelled rest days in {_IN[w]}" for w in _IN},
    **{f"sickness_days_{w}": f"sickness days in {_IN[w]}" for w in ("90d", "365d")},
    "trauma_points_365d_role_percentile": "12-month points percentile in the role group",
    "short_notice_cancellations_90d": "short-notice rest-day cancellations in 90 days",
    "sickness_spells_365d": "sickness spells in 12 months",
    "bradford_factor_365d": "Bradford factor over 12 months",
    "absent_now": "absent now",
    "open_investigations": "open investigations as officer in charge",
    "deployments_30d": "deployments in 30 days",
    "service_years": "years of service",
    "staff_type": "staff type",
    "role_group": "role group",
    "rank_or_grade": "rank or grade",
    "category": "exposure category",
    "tier": "exposure tier",
    "role": "role at the incident",
    "points": "points for the exposure",
    "feed": "source",
    AGE_FIELD: "days since the exposure",
}
OPERATOR_WORDS = {
    ">=": "at or above",
    ">": "above",
    "<=": "at or below",
    "<": "below",
    "==": "equal to",
    "!=": "not equal to",
    "in": "one of",
}


def _iso(value: Any) -> str | None:
    moment = read_datetime(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _render(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(_render(v) for v in value)
    return str(value)


def words(leaf: Mapping[str, Any]) -> str:
    """One condition in words: "12-month points 14, at or above 12" (or "not at or above")."""
    label = FIELD_LABELS.get(leaf["field"], leaf["field"].replace("_", " "))
    phrase = OPERATOR_WORDS.get(leaf["op"], leaf["op"])
    held = "" if leaf["result"] else "not "
    return f"{label} {_render(leaf['actual'])}, {held}{phrase} {_render(leaf['value'])}"


def explain_in_words(explanation: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each condition of a stored explanation as
    {"field", "label", "operator", "threshold", "actual", "result", "words"}."""
    if not explanation:
        return []
    return [
        {
            "field": leaf["field"],
            "label": FIELD_LABELS.get(leaf["field"], leaf["field"].replace("_", " ")),
            "operator": leaf["op"],
            "threshold": leaf["value"],
            "actual": leaf["actual"],
            "result": bool(leaf["result"]),
            "words": words(leaf),
        }
        for leaf in leaves(explanation)
    ]


def recipients_of(alert: Any) -> list[str]:
    """Whom the alert went to: supervisors' staff ids and addresses (an alerts row, a mapping
    with "recipients" as stored JSON text, or already a list)."""
    stored = alert["recipients"] if isinstance(alert, Mapping) else alert.recipients
    items = json.loads(stored) if isinstance(stored, str) else stored
    return [item["to"] if isinstance(item, Mapping) else item for item in items]


def names_of(conn: sa.Connection, staff_ids: Iterable[str]) -> dict[str, str]:
    """Each known staff id's newest display name."""
    wanted = sorted({s for s in staff_ids if s})
    names: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            sa.select(people_t.c.staff_id, people_t.c.display_name)
            .where(people_t.c.staff_id.in_(wanted[start : start + 500]))
            .order_by(people_t.c.staff_id, people_t.c.valid_from)
        )
        names.update({staff_id: name for staff_id, name in rows})
    return names


def is_overdue(row: Any, now: datetime | None, escalate_after: timedelta | None) -> bool:
    """Still open (not acknowledged) past the escalation time, or already escalated."""
    if row.status != "open":
        return False
    if row.escalated_at is not None:
        return True
    if now is None or escalate_after is None:
        return False
    return read_datetime(row.opened_at) + escalate_after <= now


_PATTERN = sa.bindparam("pattern", type_=alerts_t.c.recipients.type)
_RECEIVED = sa.select(alerts_t.c.recipients).where(
    alerts_t.c.recipients.like(_PATTERN, escape="\\")
)


def _like_id(staff_id: str) -> str:
    escaped = staff_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f'%"{escaped}"%'


_ORDER = {"open": 0, "acknowledged": 1, "resolved": 2}


def alerts_for_recipient(
    engine: sa.Engine,
    staff_id: str | None,
    status: str = "all",
    *,
    now: datetime | None = None,
    escalate_after: timedelta | None = None,
) -> list[dict[str, Any]]:
    """The `alerts --json` rows sent to `staff_id` (None: every alert, for wellbeing), open
    first, then acknowledged, then resolved, newest first within each; each row also has
    title, display_name and overdue.

    :raise ValueError: `status` not in STATUS_FILTERS.
    """
    query, params = _recipient_query("rows", staff_id, status)
    with engine.connect() as conn:
        rows = [
            row
            for row in conn.execute(query, params)
            if staff_id is None or staff_id in recipients_of(row)
        ]
        names = names_of(conn, {row.staff_id for row in rows})
    return _listed(rows, names, now, escalate_after)


def count_for_recipient(
    bind: sa.Engine | sa.Connection, staff_id: str | None, status: str = "all"
) -> int:
    """How many alerts alerts_for_recipient(staff_id, status) lists, reading only each
    candidate's recipients (the Me page's "alerts waiting" count).

    :raise ValueError: `status` not in STATUS_FILTERS.
    """
    query, params = _recipient_query("recipients", staff_id, status)
    with connected(bind) as conn:
        return sum(
            1
            for row in conn.execute(query, params)
            if staff_id is None or staff_id in recipients_of(row)
        )


def _recipient_query(what: str, staff_id: str | None, status: str) -> tuple[sa.Select, dict]:
    """The statement for alerts_for_recipient ("rows") or count_for_recipient ("recipients"),
    and its parameters. :raise ValueError: `status` not in STATUS_FILTERS."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"status: one of {', '.join(STATUS_FILTERS)}, not {status!r}")
    params = {} if staff_id is None else {"pattern": _like_id(staff_id)}
    return _recipient_statement(what, status, staff_id is not None), params


@functools.cache
def _recipient_statement(what: str, status: str, by_recipient: bool) -> sa.Select:
    """Built once for each kind: the Me page counts the alerts waiting on every request, and
    building a statement costs more than running it."""
    query = sa.select(alerts_t) if what == "rows" else sa.select(alerts_t.c.recipients)
    if status == "unresolved":
        query = query.where(alerts_t.c.status != "resolved")
    elif status != "all":
        query = query.where(alerts_t.c.status == status)
    if by_recipient:
        # The recipients are JSON text: LIKE finds the candidates, recipients_of decides.
        query = query.where(alerts_t.c.recipients.like(_PATTERN, escape="\\"))
    return query


def _listed(rows, names, now, escalate_after) -> list[dict[str, Any]]:
    found = [
        {
            # the `alerts --json` fields (engine.alerts.lifecycle.list_alerts), then the page's
            "alert_id": row.id,
            "staff_id": row.staff_id,
            "rule_id": row.rule_id,
            "severity": row.severity,
            "status": row.status,
            "opened_at": _iso(row.opened_at),
            "recipients": recipients_of(row),
            "outcome": row.outcome,
            "escalated": row.escalated_at is not None,
            "title": row.title,
            "display_name": names.get(row.staff_id, row.staff_id),
            "overdue": is_overdue(row, now, escalate_after),
        }
        for row in rows
    ]
    found.sort(key=lambda a: (a["opened_at"], a["alert_id"]), reverse=True)
    found.sort(key=lambda a: _ORDER[a["status"]])
    return found


def has_received_alerts(conn: sa.Connection, staff_id: str) -> bool:
    """Whether any alert (of any state) was sent to `staff_id`."""
    found = conn.execute(_RECEIVED, {"pattern": _like_id(staff_id)}).scalars()
    return any(staff_id in recipients_of({"recipients": text}) for text in found)


MAX_ID = 2**31 - 1  # the largest id an alerts row can have (an integer column on PostgreSQL)


def alert_row(conn: sa.Connection, alert_id: int) -> Any | None:
    """The alerts row, or None (also for an id no database could hold)."""
    if not 0 < alert_id <= MAX_ID:
        return None
    return conn.execute(sa.select(alerts_t).where(alerts_t.c.id == alert_id)).first()


def alert_detail(
    engine: sa.Engine,
    alert_id: int,
    *,
    now: datetime | None = None,
    escalate_after: timedelta | None = None,
) -> dict[str, Any] | None:
    """One alert explained, or None if there is none with this id.

    The `alerts --json` fields, plus: title, display_name, rule_version, acknowledged_at/_by,
    resolved_at/_by, outcome, outcome_label, note, overdue; `explanation` (each condition:
    field, label, operator, threshold, actual, result, words; empty when the decision log's
    copy was erased); `reasons` (the words of the conditions that held); `sent_to` (each
    recipient: name, to, display_name, channels); `deliveries` (each outbox row: kind,
    channel, recipient, status, created_at, sent_at); `history` (each alert event: at, actor,
    actor_name, action, detail), oldest first.
    """
    with engine.connect() as conn:
        row = alert_row(conn, alert_id)
        if row is None:
            return None
        decision = conn.execute(
            sa.select(decisions_t.c.explanation, decisions_t.c.erased_at).where(
                decisions_t.c.decision_id == row.decision_id
            )
        ).first()
        events = conn.execute(
            sa.select(events_t)
            .where(events_t.c.alert_id == alert_id)
            .order_by(events_t.c.at, events_t.c.id)
        ).all()
        deliveries = conn.execute(
            sa.select(outbox_t)
            .where(outbox_t.c.alert_id == alert_id)
            .order_by(outbox_t.c.created_at, outbox_t.c.id)
        ).all()
        sent_to = json.loads(row.recipients)
        people = {row.staff_id, row.acknowledged_by, row.resolved_by}
        people |= {e.actor for e in events} | {r["to"] for r in sent_to}
        names = names_of(conn, people)
    stored = json.loads(decision.explanation) if decision and decision.explanation else None
    explanation = explain_in_words(stored)
    return {
        "alert_id": row.id,
        "staff_id": row.staff_id,
        "display_name": names.get(row.staff_id, row.staff_id),
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "title": row.title,
        "severity": row.severity,
        "status": row.status,
        "opened_at": _iso(row.opened_at),
        "recipients": [r["to"] for r in sent_to],
        "acknowledged_at": _iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "resolved_at": _iso(row.resolved_at),
        "resolved_by": row.resolved_by,
        "outcome": row.outcome,
        "outcome_label": OUTCOME_LABELS.get(row.outcome) if row.outcome else None,
        "note": row.note,
        "escalated": row.escalated_at is not None,
        "overdue": is_overdue(row, now, escalate_after),
        "explanation": explanation,
        "reasons": [c["words"] for c in explanation if c["result"]],
        "sent_to": [
            {
                "name": r["name"],
                "to": r["to"],
                "display_name": names.get(r["to"]),
                "channels": r["channels"],
            }
            for r in sent_to
        ],
        "deliveries": [
            {
                "kind": d.kind,
                "channel": d.channel,
                "recipient": d.recipient,
                "status": d.status,
                "created_at": _iso(d.created_at),
                "sent_at": _iso(d.sent_at),
            }
            for d in deliveries
        ],
        "history": [
            {
                "at": _iso(e.at),
                "actor": e.actor,
                "actor_name": names.get(e.actor, e.actor),
                "action": e.action,
                "detail": json.loads(e.detail) if e.detail else {},
            }
            for e in events
        ],
    }
