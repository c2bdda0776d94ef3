"""Alerts: the alerts sent to me, and one alert: why it fired, who it went to, what was done.

Only a recipient of the alert or the wellbeing team may acknowledge or resolve it
(web.access.may_act_on_alert); resolving needs an outcome. The state changes are
engine.alerts.lifecycle.acknowledge and resolve, each in one transaction with its alert event.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from engine.alerts.lifecycle import AlertError, acknowledge, resolve
from web import db
from web.auth import allowed, current_user
from web.forms import AcknowledgeForm, ResolveForm

bp = Blueprint("alerts", __name__)


def _may_see(user, alert_id: int, **_) -> bool:
    from web import access

    return access.may_see_alert(user, alert_id)


def _may_act(user, alert_id: int, **_) -> bool:
    from web import access

    return access.may_act_on_alert(user, alert_id)


def _may_list(user, **_) -> bool:
    from web import access

    return access.may_list_alerts(user)


@bp.get("/alerts")
@allowed(_may_list)
def my_alerts():
    """Alerts sent to me (the wellbeing team: every alert): open first, then acknowledged,
    then resolved; overdue ones marked. `?show=all` includes resolved ones."""
    from engine.alerts.view import alerts_for_recipient
    from web import access

    user = current_user()
    show = request.args.get("show", "unresolved")
    if show not in ("unresolved", "all"):
        show = "unresolved"
    alerts = alerts_for_recipient(
        db.engine(),
        None if access.sees_every_alert(user) else user.staff_id,
        show,
        now=db.now(),
        escalate_after=db.routing().escalate_after,
    )
    return render_template("alerts/list.html", alerts=alerts, show=show)


@bp.get("/alerts/<int:alert_id>")
@allowed(_may_see)
def alert(alert_id: int):
    """One alert: why it fired in words, who it went to and when, its history, and (for a
    recipient or wellbeing) the acknowledge and resolve forms.

    :raise 404: no such alert (after the permission check, which denies it alike).
    """
    return _page(alert_id, ResolveForm(formdata=None))


def _page(alert_id: int, resolve_form: ResolveForm):
    from engine.alerts.view import alert_detail
    from engine.people.access_log import record_view
    from web import access

    detail = alert_detail(
        db.engine(), alert_id, now=db.now(), escalate_after=db.routing().escalate_after
    )
    if detail is None:
        abort(404)
    user = current_user()
    # Why it fired shows the person's figures: a view of their data, which they see logged.
    with db.engine().begin() as conn:
        record_view(
            conn, user.staff_id, detail["staff_id"], "alert_review", None, db.now(), what="alert"
        )
    return render_template(
        "alerts/alert.html",
        alert=detail,
        may_act=access.may_act_on_alert(user, alert_id),
        may_view_person=access.may_view_person(user, detail["staff_id"]),
        acknowledge_form=AcknowledgeForm(formdata=None),
        resolve_form=resolve_form,
    )


@bp.post("/alerts/<int:alert_id>/acknowledge")
@allowed(_may_act)
def acknowledge_alert(alert_id: int):
    """Mark the alert as seen: 'I will speak to them'."""
    form = AcknowledgeForm()
    if form.validate_on_submit():
        try:
            with db.engine().begin() as conn:
                acknowledge(conn, alert_id, current_user().staff_id, db.now())
        except AlertError as error:
            flash(str(error).capitalize(), "error")
        else:
            flash("Alert acknowledged. Record the outcome once you have spoken to them.", "success")
    return redirect(url_for("alerts.alert", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/resolve")
@allowed(_may_act)
def resolve_alert(alert_id: int):
    """Close the alert with the conversation's outcome (required) and an optional note."""
    form = ResolveForm()
    if not form.validate_on_submit():
        return _page(alert_id, form)  # the form again, its errors summarised at the top
    try:
        with db.engine().begin() as conn:
            resolve(
                conn,
                alert_id,
                current_user().staff_id,
                form.outcome.data,
                db.now(),
                note=form.note.data or None,
            )
    except AlertError as error:
        flash(str(error).capitalize(), "error")
    else:
        flash("Outcome recorded. The alert is closed.", "success")
    return redirect(url_for("alerts.alert", alert_id=alert_id))
