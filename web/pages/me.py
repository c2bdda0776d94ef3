"""Me: my own record, who looked at it, opting out and back in, asking for a conversation.

Only ever the signed-in person's own data: no route here takes a staff id.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from engine.people import directory as people
from engine.people.opt_out import UnknownPerson, opt_in, opt_out
from web import db
from web.auth import current_user, signed_in
from web.forms import ConfirmForm, ConversationForm
from web.pages import charts

bp = Blueprint("me", __name__)

# National signposts (DESIGN.md): every force's people can use these.
SIGNPOSTS = (
    (
        "Police Care UK",
        "https://www.policecare.org.uk/",
        "Free, confidential support for serving and former officers, staff and volunteers.",
    ),
    (
        "Oscar Kilo",
        "https://www.oscarkilo.org.uk/",
        "The national police wellbeing service: guidance and self-help.",
    ),
    (
        "Occupational Health",
        None,
        "Your force's Occupational Health team: ask your supervisor or HR for a referral, or "
        "refer yourself.",
    ),
    (
        "TRiM (Trauma Risk Management)",
        None,
        "Trained colleagues who check in after a traumatic incident. Ask for a TRiM "
        "assessment at any time.",
    ),
)


@bp.get("/")
@signed_in
def home():
    return redirect(url_for("me.dashboard"))


@bp.get("/me")
@signed_in
def dashboard():
    """My record: windows, exposure by month (chart and table), exposures, indicators, support,
    who viewed my record, the opt-out switch and the conversation button.

    A person not (yet) in the people feed sees the statement and support, no figures.
    """
    from engine.people.access_log import access_log_for
    from engine.people.conversations import requests_of

    user = current_user()
    try:
        exposure = db.exposure(user.staff_id)
    except UnknownPerson:
        exposure = None
    months = None
    if exposure and not exposure["opted_out"]:
        months = charts.by_month(exposure["exposures"], db.now())
    return render_template(
        "me/dashboard.html",
        exposure=exposure,
        months=months,
        chart=charts.month_chart(months) if months else None,
        indicators=people.current_indicators(db.reads(), user.staff_id),
        signposts=SIGNPOSTS,
        contacts=db.settings().web.support_contacts,
        access_log=access_log_for(db.reads(), user.staff_id) if exposure else [],
        conversation_form=ConversationForm(),
        requests=requests_of(db.reads(), user.staff_id, limit=5) if exposure else [],
        alerts_waiting=_alerts_waiting(user),
    )


def _alerts_waiting(user) -> int:
    """How many unresolved alerts wait for this person (the wellbeing team: every one)."""
    from engine.alerts.view import count_for_recipient
    from web import access

    if not access.may_list_alerts(user):
        return 0
    staff_id = None if access.sees_every_alert(user) else user.staff_id
    # A count: reading each alert whole, and its person's name, was a quarter of the page.
    return count_for_recipient(db.reads(), staff_id, "unresolved")


@bp.route("/me/opt-out", methods=["GET", "POST"])
@signed_in
def opt_out_page():
    """What opting out does, then (POST) doing it."""
    form = ConfirmForm()
    user = current_user()
    if form.validate_on_submit():
        try:
            opt_out(db.engine(), user.staff_id, actor=user.staff_id, channel="web", clock=db.now)
        except UnknownPerson:
            flash("You are not in the people feed yet, so there is nothing to opt out of.", "error")
            return redirect(url_for("me.dashboard"))
        flash("You have opted out. Your exposure records and alerts have been deleted.", "success")
        return redirect(url_for("me.dashboard"))
    return render_template("me/opt_out.html", form=form)


@bp.route("/me/opt-in", methods=["GET", "POST"])
@signed_in
def opt_in_page():
    """What opting back in does, then (POST) doing it."""
    form = ConfirmForm()
    user = current_user()
    if form.validate_on_submit():
        try:
            opt_in(
                db.engine(),
                user.staff_id,
                db.criteria(),
                actor=user.staff_id,
                channel="web",
                clock=db.now,
            )
        except UnknownPerson:
            flash("You are not in the people feed yet.", "error")
            return redirect(url_for("me.dashboard"))
        flash("You have opted back in. Your record has been rebuilt from force systems.", "success")
        return redirect(url_for("me.dashboard"))
    return render_template("me/opt_in.html", form=form)


@bp.post("/me/conversation")
@signed_in
def conversation():
    """Ask for a conversation with my supervisor or the wellbeing team (through the outbox;
    the message says only that I asked, and links to my record)."""
    from engine.people.conversations import ConversationError, request_conversation

    form = ConversationForm()
    user = current_user()
    if not form.validate_on_submit():
        flash("Choose who you would like to talk to, then press the button again.", "error")
        return redirect(url_for("me.dashboard", _anchor="conversation"))
    to = form.to.data
    who = "your supervisor" if to == "supervisor" else "the wellbeing team"
    try:
        request_conversation(db.engine(), user.staff_id, to, db.routing(), db.now())
    except ConversationError as error:
        flash(f"Your request could not be sent: {error}.", "error")
    except UnknownPerson:
        flash("You are not in the people feed yet, so the request could not be sent.", "error")
    else:
        flash(f"Your request has gone to {who}. They will get in touch with you.", "success")
    return redirect(url_for("me.dashboard", _anchor="conversation"))
