"""The auditors' pages: the decision log searched, one decision explained, the hash chain
verified, the signed checkpoints, and the access log searched.

An auditor sees every decision and which conditions held, but not the figures behind it
(its input, and the person's actual values) until they record an `audit` reason, which
writes an access-log entry the person sees (engine.oversight.audit_search.decision).
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, render_template, request
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from engine.alerts.lifecycle import OUTCOMES
from engine.alerts.view import FIELD_LABELS, OPERATOR_WORDS, explain_in_words
from engine.oversight import audit_search
from engine.people.access_log import NOTE_MAX, REASON_LABELS, AccessReasonError
from engine.rules.conditions import leaves
from web import db
from web.auth import allowed, current_user, has_role
from web.forms import OUTCOME_LABELS

bp = Blueprint("audit", __name__)

may_audit = has_role("auditor")
PAGE = 25
DECISION_OUTCOMES = {
    "alert_opened": "An alert was raised",
    "suppressed_open_alert": "No alert: one was already open",
    "suppressed_cooldown": "No alert: within the rule's cooldown",
}


class AuditReasonForm(FlaskForm):
    """Recording an audit reason shows what the decision saw, and is logged for the person."""

    note = TextAreaField(
        "Note (optional)",
        description="The person can read this in their record's access log.",
        validators=[Optional(), Length(max=NOTE_MAX)],
    )


class VerifyForm(FlaskForm):
    """The verify button: the CSRF token only."""


def _text(name: str, limit: int = 100) -> str:
    return (request.args.get(name) or "").strip()[:limit].replace("\x00", "")


def _date(name: str, errors: list) -> date | None:
    text = _text(name, 20)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append((name, "Enter the date as year-month-day, for example 2025-06-30"))
        return None


def _page_number() -> int:
    text = request.args.get("page", "1")
    return max(1, min(int(text), 10_000)) if text.isdigit() else 1


@bp.get("/audit")
@allowed(may_audit)
def audit_home():
    """The decision log's search form, the chain's verify button and the checkpoints."""
    return _home(None)


def _home(chain):
    return render_template(
        "audit/home.html",
        chain=chain,
        verify_form=VerifyForm(formdata=None),
        checkpoints=audit_search.checkpoints(db.engine(), limit=20),
        key_set=db.settings().audit_key_bytes is not None,
    )


@bp.post("/audit/verify")
@allowed(may_audit)
def verify():
    """Walk the decision log's hash chain (and the checkpoints' signatures, when the audit
    key is set) and say whether it holds, or which entry is the first bad one."""
    form = VerifyForm()
    if not form.validate_on_submit():
        abort(400)
    return _home(audit_search.chain_status(db.engine(), db.settings().audit_key_bytes))


@bp.get("/audit/decisions")
@allowed(may_audit)
def decisions():
    """The decision log, newest first: by person, rule, dates, the decision's outcome and
    the alert's recorded outcome."""
    errors: list = []
    values = {k: _text(k) for k in ("staff_id", "rule_id", "outcome", "alert_outcome")}
    values["outcome"] = values["outcome"] if values["outcome"] in DECISION_OUTCOMES else ""
    values["alert_outcome"] = values["alert_outcome"] if values["alert_outcome"] in OUTCOMES else ""
    start, end = _date("from", errors), _date("to", errors)
    values["from"], values["to"] = _text("from", 20), _text("to", 20)
    page = _page_number()
    found = None
    if not errors:
        search = audit_search.DecisionSearch(
            staff_id=values["staff_id"] or None,
            rule_id=values["rule_id"] or None,
            start=start,
            end=end,
            outcome=values["outcome"] or None,
            alert_outcome=values["alert_outcome"] or None,
            limit=PAGE,
            offset=(page - 1) * PAGE,
        )
        found = audit_search.search_decisions(db.engine(), search)
    return render_template(
        "audit/decisions.html",
        found=found,
        values=values,
        errors=errors,
        page=page,
        per_page=PAGE,
        decision_outcomes=DECISION_OUTCOMES,
        alert_outcomes=OUTCOME_LABELS,
        searched=any(values.values()),
    )


def _conditions(explanation: dict | None, with_values: bool) -> list[dict]:
    """Each condition in words; without values, only the threshold and whether it held."""
    if not explanation:
        return []
    if with_values:
        return explain_in_words(explanation)
    found = []
    for leaf in leaves(explanation):
        label = FIELD_LABELS.get(leaf["field"], leaf["field"].replace("_", " "))
        phrase = OPERATOR_WORDS.get(leaf["op"], leaf["op"])
        held = "held" if leaf["result"] else "did not hold"
        found.append({"words": f"{label} {phrase} {leaf['value']}: {held}", **leaf})
    return found


def _flat(value: dict, prefix: str = "") -> list[tuple[str, object]]:
    """What a decision saw as (label, value) rows: nested figures one row each."""
    rows: list[tuple[str, object]] = []
    for key, item in value.items():
        label = f"{prefix}{key}".replace("_", " ")
        if isinstance(item, dict):
            rows += _flat(item, f"{prefix}{key}: ")
        else:
            rows.append((label, "none" if item is None else item))
    return rows


@bp.route("/audit/decisions/<decision_id>", methods=["GET", "POST"])
@allowed(may_audit)
def decision(decision_id: str):
    """One decision: its explanation, ruleset and criteria versions. POST (with the audit
    reason's optional note) shows what it saw too, and writes an access-log entry.

    :raise 404: no such decision.
    """
    if "\x00" in decision_id or len(decision_id) > 200:
        abort(404)
    form = AuditReasonForm()
    reason = None
    if request.method == "POST":
        if not form.validate_on_submit():
            return _decision_page(decision_id, None, form)
        reason = "audit"
    return _decision_page(decision_id, reason, form)


def _decision_page(decision_id: str, reason: str | None, form: AuditReasonForm):
    try:
        found = audit_search.decision(
            db.engine(),
            decision_id,
            viewer_id=current_user().staff_id,
            at=db.now(),
            reason=reason,
            note=form.note.data if reason else None,
        )
    except audit_search.NoDecision:
        abort(404)
    except (audit_search.SearchError, AccessReasonError) as error:
        form.note.errors = [*form.note.errors, str(error).split(": ", 1)[-1]]
        found = audit_search.decision(
            db.engine(), decision_id, viewer_id=current_user().staff_id, at=db.now()
        )
    return render_template(
        "audit/decision.html",
        d=found,
        conditions=_conditions(found["explanation"], found["detail_shown"]),
        inputs=_flat(found["input"]) if found["input"] else [],
        form=form,
        decision_outcomes=DECISION_OUTCOMES,
    )


@bp.get("/audit/access-log")
@allowed(may_audit)
def access_log():
    """Who viewed whose record, when and why: by person, viewer, reason and dates."""
    errors: list = []
    values = {k: _text(k) for k in ("staff_id", "viewer_id", "reason")}
    values["reason"] = values["reason"] if values["reason"] in REASON_LABELS else ""
    start, end = _date("from", errors), _date("to", errors)
    values["from"], values["to"] = _text("from", 20), _text("to", 20)
    page = _page_number()
    found = None
    if not errors:
        search = audit_search.AccessSearch(
            staff_id=values["staff_id"] or None,
            viewer_id=values["viewer_id"] or None,
            reason=values["reason"] or None,
            start=start,
            end=end,
            limit=PAGE,
            offset=(page - 1) * PAGE,
        )
        found = audit_search.search_access_log(db.engine(), search)
    return render_template(
        "audit/access_log.html",
        found=found,
        values=values,
        errors=errors,
        page=page,
        per_page=PAGE,
        reasons=REASON_LABELS,
        searched=any(values.values()),
    )
