"""Person: another person's record, shown only after the viewer says why.

Every view writes an access-log entry (engine.people.access_log) in the same request that shows the
record; the person sees who looked and why on their Me page. The reason and note travel in the
POST body, never in the URL, so no note reaches an access log of the web server.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for

from engine.people import directory as people
from engine.people.own_record import UnknownPerson
from engine.sqltime import local_date
from web import db
from web.auth import allowed, current_user
from web.forms import ReasonForm
from web.pages import charts

bp = Blueprint("people", __name__)


def _may_view(user, staff_id: str, **_) -> bool:
    from web import access

    return access.may_view_person(user, staff_id)


@bp.route("/people/<staff_id>", methods=["GET", "POST"])
@allowed(_may_view)
def person(staff_id: str):
    """GET: why are you looking? POST with a reason: the record, and an access-log entry.

    :raise 404: nobody has this staff id (only after the permission check has passed).
    """
    from engine.people.access_log import AccessReasonError, record_view
    from web import access

    user = current_user()
    if user.staff_id == staff_id:
        return redirect(url_for("me.dashboard"))  # your own record needs no reason
    name = people.display_name(db.engine(), staff_id, local_date(db.now()))
    if name is None:
        abort(404)
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_template("people/reason.html", form=form, staff_id=staff_id, name=name)
    if access.only_auditing(user, staff_id) and form.reason.data != "audit":
        form.reason.errors.append("As an auditor, choose Audit: you look at a record only for it")
        return render_template("people/reason.html", form=form, staff_id=staff_id, name=name)
    try:
        with db.engine().begin() as conn:
            record_view(
                conn, user.staff_id, staff_id, form.reason.data, form.note.data or None, db.now()
            )
    except AccessReasonError as error:
        message = str(error).split(": ", 1)[-1]
        getattr(form, error.field).errors.append(message[:1].upper() + message[1:])
        return render_template("people/reason.html", form=form, staff_id=staff_id, name=name)
    try:
        exposure = db.exposure(staff_id)
    except UnknownPerson:
        abort(404)
    months = None if exposure["opted_out"] else charts.by_month(exposure["exposures"], db.now())
    return render_template(
        "people/person.html",
        staff_id=staff_id,
        name=name,
        exposure=exposure,
        months=months,
        chart=charts.month_chart(months) if months else None,
        indicators=people.current_indicators(db.engine(), staff_id),
        reason=form.reason.data,
    )
