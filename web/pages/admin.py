"""The administrators' pages: ingest runs, quarantined and held rows, the outbox (with a retry
button per failed message), channel health and pulled sources; and in the demo, the messages
its local mail server and Teams webhook received.

Nothing here shows a row's contents or a message's person beyond what the message itself
carried (engine.oversight.admin keeps to file, line, field and reason).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from engine.oversight import admin
from notifications.outbox import STATUSES, OutboxError
from web import db
from web.auth import allowed, has_role
from web.pages import demo_sinks

bp = Blueprint("admin", __name__)

may_administer = has_role("admin")
STATUS_NAMES = {
    "pending": "Waiting to be sent",
    "claimed": "Being sent",
    "sent": "Sent",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "all": "All",
}


class RetryForm(FlaskForm):
    """The retry button of one failed message: the CSRF token only."""


@bp.context_processor
def _demo_link() -> dict:
    return {"demo_nav": demo_sinks.folder(db.settings()) is not None}


def _run_id() -> int | None:
    text = request.args.get("run_id", "")
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


@bp.get("/admin")
@allowed(may_administer)
def health():
    """Ingest runs (per file: outcome, counts, duration), channel health and the outbox's
    counts, pulled sources with watermarks and last success; links to the lists."""
    outcome = request.args.get("outcome") or None
    if outcome not in admin.RUN_OUTCOMES:
        outcome = None
    delivery = admin.delivery(db.engine(), status="failed")
    return render_template(
        "admin/health.html",
        runs=admin.ingest_runs(db.engine(), outcome=outcome, limit=50),
        outcome=outcome,
        outcomes=admin.RUN_OUTCOMES,
        quarantined=admin.quarantined_rows(db.engine(), limit=1)["total"],
        held=admin.held_rows(db.engine(), limit=1)["total"],
        sources=admin.pulled_sources(db.engine()),
        delivery=delivery,
        statuses=STATUSES,
        status_names=STATUS_NAMES,
    )


@bp.get("/admin/quarantine")
@allowed(may_administer)
def quarantine():
    """Quarantined rows: file, line, field and reason (of one run with `?run_id=`)."""
    run_id = _run_id()
    return render_template(
        "admin/quarantine.html",
        found=admin.quarantined_rows(db.engine(), run_id=run_id, limit=500),
        run_id=run_id,
    )


@bp.get("/admin/held")
@allowed(may_administer)
def held():
    """Rows waiting for a person the people feed does not have yet."""
    return render_template("admin/held.html", found=admin.held_rows(db.engine(), limit=500))


@bp.get("/admin/outbox")
@allowed(may_administer)
def outbox():
    """The outbox's messages of one status (failed first), each failed one with a retry
    button; counts by channel and status; channel health."""
    status = request.args.get("status", "failed")
    if status not in STATUS_NAMES:
        status = "failed"
    return render_template(
        "admin/outbox.html",
        delivery=admin.delivery(db.engine(), status=status),
        status=status,
        statuses=STATUSES,
        status_names=STATUS_NAMES,
        form=RetryForm(formdata=None),
    )


@bp.post("/admin/outbox/<int:message_id>/retry")
@allowed(may_administer)
def retry(message_id: int):
    """Put one failed message back to pending, due now (the dispatcher sends it next)."""
    form = RetryForm()
    if not form.validate_on_submit():
        flash("The form had expired: press Retry again.", "error")
    else:
        try:
            admin.retry_message(db.engine(), message_id, db.now())
        except OutboxError as error:
            flash(f"Not retried: {error}.", "error")
        else:
            flash(f"Message {message_id} will be sent again in the next delivery run.", "success")
    return redirect(url_for("admin.outbox", status=request.args.get("status", "failed")))


@bp.get("/admin/demo-messages")
@allowed(may_administer)
def demo_messages():
    """The demo's local mail server and Teams webhook: what they received, newest first.

    :raise 404: not the demo (no demo folder beside the database).
    """
    folder = demo_sinks.folder(db.settings())
    if folder is None:
        abort(404)
    return render_template(
        "admin/demo_messages.html",
        mails=demo_sinks.mails(folder),
        cards=demo_sinks.cards(folder),
        folder=folder,
    )
