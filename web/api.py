"""The JSON API at /api/v1 (CONTRACT section 5): the pages' data for BI tools and scripts.

Every route needs a user (a session cookie, or `Authorization: Bearer`): none gets 401. The
permission checks are web.access's, the same the pages use, and run before anything else, so
a user who may not see a thing gets 403 whether or not it exists. Requests are validated by
spectree against the models in web.api_schemas: a bad query or body gets 400 with
`{"error": "FIELD: what was wrong"}`; a session write without its CSRF token is refused with
400 by the app (web/__init__.py) before it gets here. Responses are checked against the same
models, and `GET /api/v1/openapi.json` is generated from them and these routes.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_wtf.csrf import CSRFError, validate_csrf
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import InType, SecureType
from spectree.plugins.flask_plugin import FlaskPlugin
from wtforms import ValidationError

from engine.alerts import lifecycle as alert_ops
from engine.alerts.view import alert_detail, alerts_for_recipient
from engine.people.access_log import record_view
from engine.people.opt_out import opt_in, opt_out
from engine.people.own_record import UnknownPerson, is_opted_out
from engine.people.team import team_view
from web import access, db
from web import api_schemas as s
from web.auth import allowed, current_user, signed_in, uses_bearer

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)


class _BlueprintOnly(FlaskPlugin):
    """spectree's Flask plugin, minus the documentation pages it would add: the document is
    served by `openapi` below, behind the same sign-in as everything else."""

    def register_route(self, app):
        app.record(lambda state: setattr(self, "blueprint_state", state))


def _first_problem(error: Any) -> str:
    """`FIELD: message` for the first thing pydantic found wrong."""
    problems = error.errors() if hasattr(error, "errors") else []
    if not problems:
        return str(error)
    problem = problems[0]
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "__root__")
    message = problem.get("msg", "invalid").removeprefix("Value error, ")
    return f"{where or 'body'}: {message}"


def _before(req, resp, error, instance, model_adapter) -> None:
    """On a validation error, replace spectree's error list by the API's one error."""
    if error is not None and resp is not None:
        resp.set_data(json.dumps({"error": _first_problem(error)}))


spec = SpecTree(
    backend=_BlueprintOnly,
    mode="strict",
    title="Trauma Tracker API",
    version="1",
    description=(
        "Each person's exposure to potentially traumatic incidents, supervisors' teams and "
        "welfare alerts. A conversation starter: never for discipline, performance or "
        "promotion. Every view of another person's record needs a reason and is shown to them."
    ),
    annotations=False,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_status=400,
    validation_error_model=s.ErrorBody,
    before=_before,
    security_schemes=[
        SecurityScheme(
            name="bearer",
            data=SecuritySchemeData(
                type=SecureType.HTTP, scheme="bearer", description="an Entra ID access token"
            ),
        ),
        SecurityScheme(
            name="session",
            data=SecuritySchemeData(
                type=SecureType.API_KEY,
                field_in=InType.COOKIE,
                name="tt_session",
                description="the web app's session cookie (writes need an X-CSRFToken header)",
            ),
        ),
    ],
    security=[{"bearer": []}, {"session": []}],  # either one
)
spec.register(bp)

_DENIED = {"HTTP_401": s.ErrorBody, "HTTP_403": s.ErrorBody}


def _responses(model, *extra: int) -> Response:
    codes = {f"HTTP_{code}": s.ErrorBody for code in extra}
    return Response(HTTP_200=model, **_DENIED, **codes)


def _ok(body: Any):
    """The body as a JSON response: spectree then checks it against the model from the JSON
    text (pydantic's fast path) instead of walking the Python objects, which costs about as
    much as the rest of a large answer."""
    return current_app.json.response(body)


def _error(status: int, message: str):
    return jsonify(error=message), status


# --- me --------------------------------------------------------------------------------------


@bp.get("/me")
@signed_in
@spec.validate(resp=_responses(s.Me), tags=["me"])
def me():
    """Who I am: staff id, name, roles, whether I have opted out, whether I supervise."""
    user = current_user()
    with db.engine().connect() as conn:
        out = is_opted_out(conn, user.staff_id)
    return _ok(
        {
            "staff_id": user.staff_id,
            "display_name": user.display_name,
            "roles": sorted(user.roles),
            "opted_out": out,
            "is_supervisor": access.is_supervisor(user),
        }
    )


@bp.get("/me/exposure")
@signed_in
@spec.validate(resp=_responses(s.Exposure, 404), tags=["me"])
def my_exposure():
    """My exposure: windows of points and counts, and each exposure (`exposure --json`)."""
    try:
        return _ok(db.exposure(current_user().staff_id))
    except UnknownPerson:
        return _error(404, "the people records have no entry for you")


@bp.get("/me/access-log")
@signed_in
@spec.validate(resp=_responses(s.AccessLog), tags=["me"])
def my_access_log():
    """Who viewed my record and why, newest first."""
    from engine.people.access_log import access_log_for

    return _ok(access_log_for(db.engine(), current_user().staff_id))


def _choose(opting_out: bool):
    user = current_user()
    try:
        if opting_out:
            opt_out(db.engine(), user.staff_id, actor=user.staff_id, channel="web", clock=db.now)
        else:
            opt_in(
                db.engine(),
                user.staff_id,
                db.criteria(),
                actor=user.staff_id,
                channel="web",
                clock=db.now,
            )
    except UnknownPerson:
        return _error(404, "the people records have no entry for you")
    return _ok({"opted_out": opting_out})


@bp.post("/me/opt-out")
@signed_in
@spec.validate(resp=_responses(s.OptedOut, 400, 404), tags=["me"])
def my_opt_out():
    """Opt out: my exposures, figures and alerts are deleted at once and none are made while
    I am out; I leave team and aggregate views. Doing it twice changes nothing."""
    return _choose(True)


@bp.post("/me/opt-in")
@signed_in
@spec.validate(resp=_responses(s.OptedOut, 400, 404), tags=["me"])
def my_opt_in():
    """Opt back in: my exposures and figures are worked out again from the source records."""
    return _choose(False)


# --- other people ----------------------------------------------------------------------------


def _require_csrf_header() -> None:
    """The X-CSRFToken header must hold the session's CSRF token (Flask-WTF checks only the
    unsafe methods by itself); a CSRFError, answered 400, when it doesn't."""
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except ValidationError as error:
        raise CSRFError(error.args[0]) from error


@bp.get("/people/<staff_id>/exposure")
@allowed(access.may_view_person)
@spec.validate(query=s.PersonQuery, resp=_responses(s.Exposure, 400, 404), tags=["people"])
def person_exposure_view(staff_id: str):
    """Another person's exposure, for their supervisor in force, wellbeing or an auditor.

    Needs `reason` (welfare_conversation, alert_review, audit, or other with a `note`); the
    view is written to the person's access log, which they see.
    """
    if not uses_bearer():
        # The reason is written where the person reads it, so a link on another site must not
        # choose it: a top-level GET from elsewhere carries the (SameSite=Lax) session cookie.
        # A signed-in browser sends the page's CSRF token as X-CSRFToken; scripts use tokens.
        _require_csrf_header()
    query = request.context.query
    user = current_user()
    if access.only_auditing(user, staff_id) and query.reason != "audit":
        return _error(400, "reason: an auditor opens a person's record only for audit")
    try:
        exposure = db.exposure(staff_id)
    except UnknownPerson:
        return _error(404, "no such person")
    with db.engine().begin() as conn:
        record_view(conn, user.staff_id, staff_id, query.reason, query.note, db.now())
    return _ok(exposure)


@bp.get("/team")
@allowed(access.may_see_team)
@spec.validate(resp=_responses(s.Team), tags=["team"])
def team():
    """The people I supervise today, directly or down the chain: windows, tier-2-or-higher
    exposures of the last 7 days, open alerts. Opted-out people appear only as a count."""
    return _ok(team_view(db.engine(), current_user().staff_id, db.now(), criteria=db.criteria()))


# --- alerts ----------------------------------------------------------------------------------


@bp.get("/alerts")
@allowed(access.may_list_alerts)
@spec.validate(query=s.AlertQuery, resp=_responses(s.AlertList, 400), tags=["alerts"])
def alert_list():
    """Alerts (`alerts --json`): every alert for wellbeing, those sent to me otherwise;
    open first. `status`: open (default), acknowledged, resolved, unresolved or all."""
    user = current_user()
    return _ok(
        alerts_for_recipient(
            db.engine(),
            None if access.sees_every_alert(user) else user.staff_id,
            request.context.query.status,
            now=db.now(),
            escalate_after=db.routing().escalate_after,
        )
    )


def _detail(alert_id: int) -> dict[str, Any] | None:
    return alert_detail(
        db.engine(), alert_id, now=db.now(), escalate_after=db.routing().escalate_after
    )


@bp.get("/alerts/<int:alert_id>")
@allowed(access.may_see_alert)
@spec.validate(resp=_responses(s.AlertDetail, 404), tags=["alerts"])
def alert(alert_id: int):
    """One alert: why it fired (each condition: field, operator, threshold, actual, result,
    and in words), who it went to, and its history. Written to the person's access log as
    an alert review."""
    detail = _detail(alert_id)
    if detail is None:
        return _error(404, "no such alert")
    user = current_user()
    with db.engine().begin() as conn:
        record_view(
            conn, user.staff_id, detail["staff_id"], "alert_review", None, db.now(), what="alert"
        )
    return _ok(detail)


def _act(alert_id: int, change) -> Any:
    if _detail(alert_id) is None:
        return _error(404, "no such alert")
    try:
        with db.engine().begin() as conn:
            change(conn)
    except alert_ops.AlertError as error:
        return _error(409, str(error))
    detail = _detail(alert_id)
    # The answer shows why it fired (the person's figures): a view they see logged, as GET.
    with db.engine().begin() as conn:
        record_view(
            conn,
            current_user().staff_id,
            detail["staff_id"],
            "alert_review",
            None,
            db.now(),
            what="alert",
        )
    return _ok(detail)


@bp.post("/alerts/<int:alert_id>/ack")
@allowed(access.may_act_on_alert)
@spec.validate(
    json=s.AcknowledgeBody, resp=_responses(s.AlertDetail, 400, 404, 409), tags=["alerts"]
)
def acknowledge(alert_id: int):
    """Acknowledge an open alert (a recipient, or wellbeing); 409 if it is not open."""
    body = request.context.json
    user = current_user()
    note = body.note if body else None
    return _act(
        alert_id, lambda conn: alert_ops.acknowledge(conn, alert_id, user.staff_id, db.now(), note)
    )


@bp.post("/alerts/<int:alert_id>/resolve")
@allowed(access.may_act_on_alert)
@spec.validate(json=s.ResolveBody, resp=_responses(s.AlertDetail, 400, 404, 409), tags=["alerts"])
def resolve(alert_id: int):
    """Record the outcome of the welfare conversation and close the alert; 409 if closed."""
    body = request.context.json
    if body is None:
        return _error(400, "body: send JSON with an outcome")
    user = current_user()
    return _act(
        alert_id,
        lambda conn: alert_ops.resolve(
            conn, alert_id, user.staff_id, body.outcome, db.now(), body.note
        ),
    )


# --- the document ----------------------------------------------------------------------------


@bp.get("/openapi.json")
@signed_in
def openapi():
    """The OpenAPI 3.1 document of this API, generated from its routes and models."""
    return jsonify(spec.spec)


def register(app: Flask) -> None:
    """Add the API to `app` (web.create_app calls this)."""
    app.register_blueprint(bp)
