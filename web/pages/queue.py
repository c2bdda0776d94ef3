"""The wellbeing team's queue: every unresolved alert, filtered, and assigned one at a time.

Each alert is worked on its own page (alerts.alert: acknowledge, then the outcome); there is
deliberately no bulk acknowledge, because each person deserves a look. TRiM follow-ups due
this week are their own list. Reads are engine.oversight.queue's; only wellbeing may.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from engine.oversight import aggregates, queue
from engine.sqltime import read_datetime
from web import db
from web.auth import allowed, current_user, has_role

bp = Blueprint("queue", __name__)

PAGE = 50  # alerts a page; the rest on the next pages, in the same order
MEMBER_REFRESH = timedelta(hours=12)

may_work_queue = has_role("wellbeing")

AGES = {
    "": ("Any age", None),
    "1d": ("Older than a day", timedelta(days=1)),
    "3d": ("Older than 3 days", timedelta(days=3)),
    "7d": ("Older than a week", timedelta(days=7)),
    "28d": ("Older than 4 weeks", timedelta(days=28)),
}
CHOICES_YES_NO = (("", "Either"), ("yes", "Yes"), ("no", "No"))
SEVERITIES = (("", "Any priority"), *((s, f"{s.capitalize()} priority") for s in queue.SEVERITIES))


@bp.app_template_filter("follow_up_name")
def follow_up_name(label: str) -> str:
    """A follow-up's label (its delay, as routing writes it) in words: 72h -> 72-hour check-in."""
    match = re.fullmatch(r"(\d+)([hdw])", label or "")
    if match is None:
        return label
    unit = {"h": "hour", "d": "day", "w": "week"}[match.group(2)]
    return f"{match.group(1)}-{unit} check-in"


class AssignForm(FlaskForm):
    """Give one alert to one member of the wellbeing team."""

    assignee = SelectField(
        "Assign to",
        choices=[],
        validators=[InputRequired(message="Choose who in the wellbeing team will work it")],
    )


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _filters() -> tuple[dict[str, str], queue.QueueFilter]:
    """The filter form's values (unknown ones dropped) and the engine's filter."""
    args = request.args
    chosen = {
        "severity": args.get("severity", "") if args.get("severity") in queue.SEVERITIES else "",
        "unit": args.get("unit", "")[:100].replace("\x00", ""),
        "age": args.get("age", "") if args.get("age", "") in AGES else "",
        "overdue": args.get("overdue", "") if args.get("overdue") in ("yes", "no") else "",
        "escalated": args.get("escalated", "") if args.get("escalated") in ("yes", "no") else "",
        "assignee": args.get("assignee", "")[:100].replace("\x00", ""),
    }
    engine_filter = queue.QueueFilter(
        severity=chosen["severity"] or None,
        unit_id=chosen["unit"] or None,
        older_than=AGES[chosen["age"]][1],
        overdue=_yes_no(chosen["overdue"]),
        escalated=_yes_no(chosen["escalated"]),
        assignee=chosen["assignee"] or None,
    )
    return chosen, engine_filter


def _units() -> list[tuple[str, str]]:
    """Teams, departments and areas by level and name, for the unit filter."""
    view = aggregates.current_overview(db.engine(), db.now(), trend=False)
    order = {"area": 0, "department": 1, "team": 2}
    units = [u for u in view.hierarchy.units.values() if u.level in order]
    units.sort(key=lambda u: (order[u.level], u.name.casefold(), u.unit_id))
    return [(u.unit_id, f"{u.name} ({u.level})") for u in units]


def _assign_form(members: list[dict]) -> AssignForm:
    """The posted assign form, its choices the wellbeing team (the page writes its own
    markup for each row: the same options, worked out once)."""
    form = AssignForm()
    form.assignee.choices = [("", "Choose a person")] + [
        (m["staff_id"], m["display_name"]) for m in members
    ]
    return form


def _note_member(user) -> list[dict]:
    """The wellbeing team as the queue knows it, with `user` in it: noted (a write) only when
    new or not seen for a while, not on every look at the queue."""
    members = queue.members(db.engine())
    known = {m["staff_id"]: m for m in members}
    seen = known.get(user.staff_id, {}).get("last_seen_at")
    if seen is None or read_datetime(datetime.fromisoformat(seen)) < db.now() - MEMBER_REFRESH:
        with db.engine().begin() as conn:
            queue.note_member(conn, user.staff_id, user.display_name, db.now())
        members = queue.members(db.engine())
    return members


def _page_number() -> int:
    text = request.args.get("page", "1")
    return max(1, min(int(text), 10_000)) if text.isdigit() else 1


@bp.get("/queue")
@allowed(may_work_queue)
def work_queue():
    """Every unresolved alert (overdue first, then by priority, oldest first) with the
    filters; an assign form on each; this week's TRiM follow-ups below."""
    members = _note_member(current_user())
    chosen, engine_filter = _filters()
    routing = db.routing()
    alerts = queue.queue(db.engine(), routing, db.now(), engine_filter)
    pages = max(1, -(-len(alerts) // PAGE))
    page = min(_page_number(), pages)
    shown = alerts[(page - 1) * PAGE : page * PAGE]
    return render_template(
        "queue/queue.html",
        alerts=shown,
        total=len(alerts),
        page=page,
        pages=pages,
        first=(page - 1) * PAGE + 1,
        chosen=chosen,
        filtered=any(chosen.values()),
        units=_units(),
        members=members,
        assignee_options=[
            ("", "Anyone or nobody"),
            (queue.UNASSIGNED, "Nobody yet"),
            *((m["staff_id"], m["display_name"]) for m in members),
        ],
        ages=[(key, label) for key, (label, _) in AGES.items()],
        yes_no=CHOICES_YES_NO,
        severities=SEVERITIES,
        escalate_after=routing.escalate_after,
        follow_ups=queue.follow_ups_this_week(db.engine(), db.now()),
    )


@bp.post("/queue/<int:alert_id>/assign")
@allowed(may_work_queue)
def assign(alert_id: int):
    """Assign one alert to a member of the wellbeing team, then back to the queue."""
    members = queue.members(db.engine())
    form = _assign_form(members)
    back = url_for("queue.work_queue", **_kept_filters())
    if not form.validate_on_submit():
        errors = [e for field in form for e in field.errors]
        flash(errors[0] if errors else "Choose who in the wellbeing team will work it", "error")
        return redirect(back + f"#alert-{alert_id}")
    try:
        with db.engine().begin() as conn:
            queue.assign(conn, alert_id, form.assignee.data, current_user().staff_id, db.now())
    except queue.QueueError as error:
        message = str(error).split(": ", 1)[-1]
        flash(f"Not assigned: {message}.", "error")
    else:
        name = dict(form.assignee.choices).get(form.assignee.data, form.assignee.data)
        flash(f"Alert {alert_id} assigned to {name}.", "success")
    return redirect(back + f"#alert-{alert_id}")


def _kept_filters() -> dict[str, str]:
    """The queue's filters as they were when the assign button was pressed."""
    keys = ("severity", "unit", "age", "overdue", "escalated", "assignee", "page")
    return {k: request.form[f"keep_{k}"] for k in keys if request.form.get(f"keep_{k}")}
