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

from flask import Blueprint, Response, jsonify, request
from spectree import Response as Responses

from engine.oversight import admin, aggregates, audit_search, effectiveness, queue
from engine.people.access_log import AccessReasonError
from engine.rules.fields import parse_duration
from notifications.outbox import OutboxError
from web import api_oversight_schemas as s
from web import db
from web.api import spec
from web.api_schemas import ErrorBody
from web.auth import allowed, current_user, has_role

bp = Blueprint("oversight", __name__, url_prefix="/api/v1")
# The document's tags of these routes (tests of part 1's routes leave them to tests/oversight).
TAGS = ("overview", "queue", "rules", "audit", "admin")

may_see_overview = has_role("leader", "wellbeing")
may_work_queue = has_role("wellbeing")
may_see_effectiveness = has_role("steering")
may_audit = has_role("auditor")
may_administer = has_role("admin")


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
@spec.validate(query=s.OverviewQuery, resp=_responses(s.AggregateRows, 400), tags=["overview"])
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
@spec.validate(query=s.OverviewQuery, resp=_responses(s.Trend, 400), tags=["overview"])
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
@spec.validate(query=s.CsvQuery, resp=_responses(None, 400), tags=["overview"])
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
@spec.validate(query=s.QueueQuery, resp=_responses(s.QueueList, 400), tags=["queue"])
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
@spec.validate(resp=_responses(s.FollowUps), tags=["queue"])
def queue_follow_ups():
    """Follow-ups (TRiM) due this week, Monday to Sunday London time, due or sent."""
    return queue.follow_ups_this_week(db.engine(), db.now())


@bp.get("/queue/members")
@allowed(may_work_queue)
@spec.validate(resp=_responses(s.Members), tags=["queue"])
def queue_members():
    """The wellbeing team members an alert can be assigned to."""
    return queue.members(db.engine())


@bp.post("/alerts/<int:alert_id>/assign")
@allowed(may_work_queue)
@spec.validate(json=s.AssignBody, resp=_responses(s.Assigned, 400, 404, 409), tags=["queue"])
def assign_alert(alert_id: int):
    """Give one alert to a wellbeing team member (one at a time: there is no bulk action)."""
    body = request.context.json
    if body is None:
        return _error(400, "body: send JSON with an assignee")
    if not 0 < alert_id <= s.MAX_ID:
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
@spec.validate(query=s.EffectivenessQuery, resp=_responses(s.Effectiveness, 400), tags=["rules"])
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
@spec.validate(query=s.DecisionQuery, resp=_responses(s.DecisionList, 400), tags=["audit"])
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
@spec.validate(query=s.DecisionReason, resp=_responses(s.DecisionDetail, 400, 404), tags=["audit"])
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
@spec.validate(resp=_responses(s.ChainStatus), tags=["audit"])
def audit_chain():
    """Whether the decision log's hash chain holds, and the first bad entry if not."""
    return audit_search.chain_status(db.engine(), db.settings().audit_key_bytes)


@bp.get("/audit/checkpoints")
@allowed(may_audit)
@spec.validate(resp=_responses(s.Checkpoints), tags=["audit"])
def audit_checkpoints():
    """The signed checkpoints, newest first."""
    return audit_search.checkpoints(db.engine())


@bp.get("/audit/access-log")
@allowed(may_audit)
@spec.validate(query=s.AccessQuery, resp=_responses(s.AccessSearch, 400), tags=["audit"])
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
@spec.validate(query=s.RunsQuery, resp=_responses(s.IngestRuns, 400), tags=["admin"])
def admin_ingest_runs():
    """Ingest runs, newest first, per file: outcome, counts and duration."""
    query = request.context.query
    return admin.ingest_runs(db.engine(), outcome=query.outcome, feed=query.feed, limit=query.limit)


@bp.get("/admin/quarantine")
@allowed(may_administer)
@spec.validate(query=s.QuarantineQuery, resp=_responses(s.Listing, 400), tags=["admin"])
def admin_quarantine():
    """Quarantined rows: file, line, field and reason."""
    query = request.context.query
    return admin.quarantined_rows(db.engine(), run_id=query.run_id, limit=query.limit)


@bp.get("/admin/held")
@allowed(may_administer)
@spec.validate(resp=_responses(s.Listing), tags=["admin"])
def admin_held():
    """Rows waiting for a person the people feed does not have yet."""
    return admin.held_rows(db.engine())


@bp.get("/admin/sources")
@allowed(may_administer)
@spec.validate(resp=_responses(s.PulledSources), tags=["admin"])
def admin_sources():
    """Pulled sources with their watermarks, last success and last failure."""
    return admin.pulled_sources(db.engine())


@bp.get("/admin/outbox")
@allowed(may_administer)
@spec.validate(query=s.OutboxQuery, resp=_responses(s.Delivery, 400), tags=["admin"])
def admin_outbox():
    """The outbox by channel and status, channel health, and the messages of one status."""
    return admin.delivery(db.engine(), status=request.context.query.status)


@bp.post("/admin/outbox/<int:message_id>/retry")
@allowed(may_administer)
@spec.validate(resp=_responses(s.Retried, 404, 409), tags=["admin"])
def admin_retry(message_id: int):
    """Put a failed notification back to pending, due now."""
    if not 0 < message_id <= s.MAX_ID:
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
