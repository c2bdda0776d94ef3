"""The JSON API of the people who run the welfare process (issue 12), beside web.api at /api/v1.

Who may (each route carries one decision, checked before anything is read):
- leader, wellbeing: the overview (`/aggregates`, its trend and CSV), with disclosure control;
- wellbeing: the queue, its follow-ups and team, assigning an alert;
- steering: rule effectiveness;
- auditor: the decision log, one decision, the chain, checkpoints, the access log;
- admin: ingest runs, quarantined and held rows, pulled sources, the outbox and retrying.

Requests and responses are validated by web.api's spectree, so these routes are in the same
`GET /api/v1/openapi.json`; a bad query or body gets 400 with `{"error": "FIELD: ..."}`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator
from spectree import Response as Responses

from engine.access_log import NOTE_MAX, REASONS, AccessReasonError
from engine.alerts import OUTCOMES
from engine.oversight import admin, aggregates, audit_search, effectiveness, queue
from engine.rules.fields import parse_duration
from notifications.outbox import STATUSES, OutboxError
from web import db
from web.api import spec
from web.api_schemas import ErrorBody
from web.auth import allowed, current_user, has_role

bp = Blueprint("oversight", __name__, url_prefix="/api/v1")
# The document's tags of these routes (tests of part 1's routes leave them to tests/oversight).
TAGS = ("overview", "queue", "rules", "audit", "admin")
MAX_ID = 2**31 - 1  # the largest id an integer column holds on PostgreSQL

may_see_overview = has_role("leader", "wellbeing")
may_work_queue = has_role("wellbeing")
may_see_effectiveness = has_role("steering")
may_audit = has_role("auditor")
may_administer = has_role("admin")


# --- shapes ----------------------------------------------------------------------------------

# An identifier or a note as sent: PostgreSQL text can't hold a NUL, so none is accepted.
Ident = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Page(_Request):
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class _Period(_Request):
    start: date | None = Field(default=None, alias="from", description="London date, included")
    end: date | None = Field(default=None, alias="to", description="London date, included")


class OverviewQuery(_Request):
    by: Literal[aggregates.LEVELS] = Field(description="the level: team, department or area")  # type: ignore[valid-type]


class CsvQuery(OverviewQuery):
    view: Literal["table", "trend"] = "table"


class AggregateRow(_Shape):
    unit_id: str | None
    name: str
    people: int | None
    exposures_365d: int | None
    points_365d_mean: float | None
    open_alerts: int | None
    suppressed: bool


class AggregateRows(RootModel[list[AggregateRow]]):
    pass


class TrendMonth(_Shape):
    month: str
    exposures_per_person: float | None
    alerts_per_person: float | None


class TrendRow(_Shape):
    unit_id: str | None
    name: str
    people: int | None
    suppressed: bool
    months: list[TrendMonth]


class Trend(_Shape):
    months: list[str]
    units: list[TrendRow]
    total: TrendRow


class QueueQuery(_Request):
    severity: Literal[queue.SEVERITIES] | None = None  # type: ignore[valid-type]
    unit_id: Ident | None = None
    older_than: str | None = Field(
        default=None, pattern=r"^\d{1,5}[mhdw]$", description="a duration: 72h, 7d, 2w"
    )
    overdue: bool | None = None
    escalated: bool | None = None
    assignee: Ident | None = Field(default=None, description="a staff id, or none")

    @field_validator("older_than")
    @classmethod
    def _duration(cls, text: str | None) -> str | None:
        if text is not None:
            parse_duration(text)
        return text


class QueueItem(_Shape):
    alert_id: int
    staff_id: str
    severity: str
    status: str
    opened_at: str
    overdue: bool
    escalated: bool
    assignee_id: str | None


class QueueList(RootModel[list[QueueItem]]):
    pass


class FollowUp(_Shape):
    alert_id: int
    label: str
    due_at: str
    status: str


class FollowUps(RootModel[list[FollowUp]]):
    pass


class Member(_Shape):
    staff_id: str
    display_name: str


class Members(RootModel[list[Member]]):
    pass


class AssignBody(_Request):
    assignee: Ident = Field(min_length=1, description="a wellbeing team member")


class Assigned(_Shape):
    alert_id: int
    assignee_id: str


class EffectivenessQuery(_Request):
    start: date = Field(alias="from")
    end: date = Field(alias="to")


class RuleEffect(_Shape):
    rule_id: str
    opened: int
    acknowledged: int
    median_hours_to_acknowledge: float | None
    outcomes: dict[str, int]
    false_positive_share: float | None


class Effectiveness(_Shape):
    rules: list[RuleEffect]


class DecisionQuery(_Page, _Period):
    staff_id: Ident | None = None
    rule_id: Ident | None = None
    outcome: Literal[audit_search.DECISION_OUTCOMES] | None = None  # type: ignore[valid-type]
    alert_outcome: Literal[OUTCOMES] | None = None  # type: ignore[valid-type]


class DecisionSummary(_Shape):
    decision_id: str
    seq: int
    at: str
    rule_id: str
    staff_id: str
    outcome: str


class DecisionList(_Shape):
    total: int
    decisions: list[DecisionSummary]


class DecisionReason(_Request):
    reason: Literal["audit"] | None = Field(
        default=None, description="audit, to see what the decision saw (logged for the person)"
    )
    note: str | None = Field(default=None, max_length=NOTE_MAX, pattern=r"^[^\x00]*$")


class DecisionDetail(DecisionSummary):
    explanation: dict[str, Any] | None
    detail_shown: bool
    input: dict[str, Any] | None
    ruleset: dict[str, Any]
    criteria: dict[str, Any]


class ChainStatus(_Shape):
    ok: bool
    entries: int
    problem: str | None
    first_bad_seq: int | None
    first_bad_decision_id: str | None


class Checkpoint(_Shape):
    seq: int
    entry_hash: str
    created_at: str
    key_id: str
    entry_matches: bool


class Checkpoints(RootModel[list[Checkpoint]]):
    pass


class AccessQuery(_Page, _Period):
    staff_id: Ident | None = None
    viewer_id: Ident | None = None
    reason: Literal[REASONS] | None = None  # type: ignore[valid-type]


class AccessEntry(_Shape):
    at: str
    viewer_id: str
    staff_id: str
    reason: str


class AccessSearch(_Shape):
    total: int
    entries: list[AccessEntry]


class RunsQuery(_Request):
    outcome: Literal[admin.RUN_OUTCOMES] | None = None  # type: ignore[valid-type]
    feed: Ident | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class IngestRun(_Shape):
    run_id: int
    source: str
    outcome: str
    duration_ms: float | None


class IngestRuns(RootModel[list[IngestRun]]):
    pass


class QuarantineQuery(_Request):
    run_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=200, ge=1, le=1000)


class Listing(_Shape):
    total: int
    rows: list[dict[str, Any]]


class PulledSource(_Shape):
    source: str
    watermark: str | None
    last_success_at: str | None


class PulledSources(RootModel[list[PulledSource]]):
    pass


class OutboxQuery(_Request):
    status: Literal[(*STATUSES, "all")] = "failed"  # type: ignore[valid-type]


class Delivery(_Shape):
    counts: dict[str, dict[str, int]]
    health: dict[str, dict[str, Any]]
    messages: list[dict[str, Any]]


class Retried(_Shape):
    id: int
    status: str


def _responses(model, *extra: int) -> Responses:
    codes = {f"HTTP_{code}": ErrorBody for code in extra}
    return Responses(HTTP_200=model, HTTP_401=ErrorBody, HTTP_403=ErrorBody, **codes)


def _json(text: str) -> Response:
    return Response(text, mimetype="application/json")


def _error(status: int, message: str):
    return jsonify(error=message), status


# --- the overview ----------------------------------------------------------------------------


@bp.get("/aggregates")
@allowed(may_see_overview)
@spec.validate(query=OverviewQuery, resp=_responses(AggregateRows, 400), tags=["overview"])
def aggregate_rows():
    """Figures by team, department or area (CONTRACT section 5): a unit of fewer than 5
    people, or one hidden so that no hidden figure can be worked out from the others and the
    totals, has `suppressed: true` and null figures. Opted-out people are in no figure."""
    view = aggregates.current_overview(db.engine(), db.now(), trend=False)
    by = request.context.query.by
    # Serialised once per set of figures: every leader gets the same text, and spectree
    # checks JSON text several times faster than hundreds of rows as objects.
    return _json(view.once(("rows", by), lambda: json.dumps(view.rows(by), separators=(",", ":"))))


@bp.get("/aggregates/trend")
@allowed(may_see_overview)
@spec.validate(query=OverviewQuery, resp=_responses(Trend, 400), tags=["overview"])
def aggregate_trend():
    """Exposures and alerts per person by unit and month, the last 12 months (this one so
    far), with the same suppression as the table; the force total last."""
    view = aggregates.current_overview(db.engine(), db.now())
    by = request.context.query.by
    return _json(
        view.once(("trend", by), lambda: json.dumps(view.trend(by), separators=(",", ":")))
    )


@bp.get("/aggregates.csv")
@allowed(may_see_overview)
@spec.validate(query=CsvQuery, resp=_responses(None, 400), tags=["overview"])
def aggregate_csv():
    """The table (`view=table`) or the trend (`view=trend`) as CSV, exactly as shown:
    suppressed cells empty and marked."""
    query = request.context.query
    view = aggregates.current_overview(db.engine(), db.now(), trend=query.view == "trend")
    text = (aggregates.table_csv if query.view == "table" else aggregates.trend_csv)(view, query.by)
    name = f"overview-{query.by}-{query.view}-{view.day.isoformat()}.csv"
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the queue -------------------------------------------------------------------------------


@bp.get("/queue")
@allowed(may_work_queue)
@spec.validate(query=QueueQuery, resp=_responses(QueueList, 400), tags=["queue"])
def queue_list():
    """Every unresolved alert, overdue first: filters by severity, unit (and below), age
    (`older_than`), overdue (past routing's escalate.after), escalated and assignee."""
    query = request.context.query
    user = current_user()
    with db.engine().begin() as conn:
        queue.note_member(conn, user.staff_id, user.display_name, db.now())
    filters = queue.QueueFilter(
        severity=query.severity,
        unit_id=query.unit_id,
        older_than=parse_duration(query.older_than) if query.older_than else None,
        overdue=query.overdue,
        escalated=query.escalated,
        assignee=query.assignee,
    )
    return queue.queue(db.engine(), db.routing(), db.now(), filters)


@bp.get("/queue/follow-ups")
@allowed(may_work_queue)
@spec.validate(resp=_responses(FollowUps), tags=["queue"])
def queue_follow_ups():
    """Follow-ups (TRiM) due this week, Monday to Sunday London time, due or sent."""
    return queue.follow_ups_this_week(db.engine(), db.now())


@bp.get("/queue/members")
@allowed(may_work_queue)
@spec.validate(resp=_responses(Members), tags=["queue"])
def queue_members():
    """The wellbeing team members an alert can be assigned to."""
    return queue.members(db.engine())


@bp.post("/alerts/<int:alert_id>/assign")
@allowed(may_work_queue)
@spec.validate(json=AssignBody, resp=_responses(Assigned, 400, 404, 409), tags=["queue"])
def assign_alert(alert_id: int):
    """Give one alert to a wellbeing team member (one at a time: there is no bulk action)."""
    body = request.context.json
    if body is None:
        return _error(400, "body: send JSON with an assignee")
    if not 0 < alert_id <= MAX_ID:
        return _error(404, "no such alert")
    try:
        with db.engine().begin() as conn:
            queue.assign(conn, alert_id, body.assignee, current_user().staff_id, db.now())
    except queue.QueueError as error:
        message = str(error)
        if message.startswith("alert_id: no alert"):
            return _error(404, "no such alert")
        return _error(409, message)  # resolved, or not someone in the team
    return {"alert_id": alert_id, "assignee_id": body.assignee}


# --- the steering group ----------------------------------------------------------------------


@bp.get("/rules/effectiveness")
@allowed(may_see_effectiveness)
@spec.validate(query=EffectivenessQuery, resp=_responses(Effectiveness, 400), tags=["rules"])
def rule_effectiveness():
    """Per rule, over the alerts opened from `from` to `to`: opened, acknowledged, median
    hours to the first response, outcomes by code and the share marked false positive."""
    query = request.context.query
    rules = [(rule.id, rule.title) for rule in db.rule_pack().rules]
    try:
        return effectiveness.effectiveness(db.engine(), query.start, query.end, rules)
    except effectiveness.PeriodError as error:
        return _error(400, str(error))


# --- audit -----------------------------------------------------------------------------------


@bp.get("/audit/decisions")
@allowed(may_audit)
@spec.validate(query=DecisionQuery, resp=_responses(DecisionList, 400), tags=["audit"])
def audit_decisions():
    """The decision log, newest first: by person, rule, dates, outcome, the alert's outcome."""
    query = request.context.query
    try:
        search = audit_search.DecisionSearch(**query.model_dump(exclude_none=True))
        return audit_search.search_decisions(db.engine(), search)
    except ValueError as error:
        return _error(400, str(error))


@bp.get("/audit/decisions/<decision_id>")
@allowed(may_audit)
@spec.validate(query=DecisionReason, resp=_responses(DecisionDetail, 400, 404), tags=["audit"])
def audit_decision(decision_id: str):
    """One decision: its explanation, ruleset and criteria versions. What it saw (its input,
    the actual figures) only with `reason=audit`, which the person sees in their access log."""
    query = request.context.query
    if "\x00" in decision_id:
        return _error(404, "no such decision")
    try:
        return audit_search.decision(
            db.engine(),
            decision_id,
            viewer_id=current_user().staff_id,
            at=db.now(),
            reason=query.reason,
            note=query.note,
        )
    except audit_search.NoDecision:
        return _error(404, "no such decision")
    except (audit_search.SearchError, AccessReasonError) as error:
        return _error(400, str(error))


@bp.get("/audit/chain")
@allowed(may_audit)
@spec.validate(resp=_responses(ChainStatus), tags=["audit"])
def audit_chain():
    """Whether the decision log's hash chain holds, and the first bad entry if not."""
    return audit_search.chain_status(db.engine(), db.settings().audit_key_bytes)


@bp.get("/audit/checkpoints")
@allowed(may_audit)
@spec.validate(resp=_responses(Checkpoints), tags=["audit"])
def audit_checkpoints():
    """The signed checkpoints, newest first."""
    return audit_search.checkpoints(db.engine())


@bp.get("/audit/access-log")
@allowed(may_audit)
@spec.validate(query=AccessQuery, resp=_responses(AccessSearch, 400), tags=["audit"])
def audit_access_log():
    """Who viewed whose record, when and why: by person, viewer, reason and dates."""
    query = request.context.query
    try:
        search = audit_search.AccessSearch(**query.model_dump(exclude_none=True))
        return audit_search.search_access_log(db.engine(), search)
    except ValueError as error:
        return _error(400, str(error))


# --- administration --------------------------------------------------------------------------


@bp.get("/admin/ingest-runs")
@allowed(may_administer)
@spec.validate(query=RunsQuery, resp=_responses(IngestRuns, 400), tags=["admin"])
def admin_ingest_runs():
    """Ingest runs, newest first, per file: outcome, counts and duration."""
    query = request.context.query
    return admin.ingest_runs(db.engine(), outcome=query.outcome, feed=query.feed, limit=query.limit)


@bp.get("/admin/quarantine")
@allowed(may_administer)
@spec.validate(query=QuarantineQuery, resp=_responses(Listing, 400), tags=["admin"])
def admin_quarantine():
    """Quarantined rows: file, line, field and reason."""
    query = request.context.query
    return admin.quarantined_rows(db.engine(), run_id=query.run_id, limit=query.limit)


@bp.get("/admin/held")
@allowed(may_administer)
@spec.validate(resp=_responses(Listing), tags=["admin"])
def admin_held():
    """Rows waiting for a person the people feed does not have yet."""
    return admin.held_rows(db.engine())


@bp.get("/admin/sources")
@allowed(may_administer)
@spec.validate(resp=_responses(PulledSources), tags=["admin"])
def admin_sources():
    """Pulled sources with their watermarks, last success and last failure."""
    return admin.pulled_sources(db.engine())


@bp.get("/admin/outbox")
@allowed(may_administer)
@spec.validate(query=OutboxQuery, resp=_responses(Delivery, 400), tags=["admin"])
def admin_outbox():
    """The outbox by channel and status, channel health, and the messages of one status."""
    return admin.delivery(db.engine(), status=request.context.query.status)


@bp.post("/admin/outbox/<int:message_id>/retry")
@allowed(may_administer)
@spec.validate(resp=_responses(Retried, 404, 409), tags=["admin"])
def admin_retry(message_id: int):
    """Put a failed notification back to pending, due now."""
    if not 0 < message_id <= MAX_ID:
        return _error(404, "no such message")
    try:
        admin.retry_message(db.engine(), message_id, db.now())
    except OutboxError as error:
        if str(error).startswith("no outbox message"):
            return _error(404, "no such message")
        return _error(409, str(error))
    return {"id": message_id, "status": "pending"}


def register(app) -> None:
    """Add these routes to `app` (web.create_app calls this)."""
    app.register_blueprint(bp)
