"""Who may see and do what: the one authorisation layer of the pages and the API.

Each check is `check(user, **view_args)` -> bool, for `web.auth.allowed(check)`; a view's URL
variables are passed by name (`staff_id`, `alert_id`), so a route's variable must be named so.
Views call the same functions again when they need the answer in the body.

- The person: their own record always (no reason asked, nothing logged).
- Another person's record (`may_view_person`): the person's supervisor in force today
  (directly or down the chain, engine.people.team), wellbeing, or an auditor; never an opted-out
  person (they appear only as a count), and the answer for a staff id nobody has is the same
  as for one the user may not see.
- The team page (`may_see_team`): someone who supervises anyone today.
- Alerts: wellbeing sees and acts on every alert; anyone else sees and acts on the alerts
  sent to them (`recipients_of`), whether or not the person is still on their team.
- The alert list (`may_list_alerts`): wellbeing, a supervisor, or anyone alerts were sent to.

Answers are worked out once per request (flask.g), as the navigation, the decorator and the
view often ask the same thing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import g

from engine.alerts.view import alert_row, has_received_alerts, recipients_of
from engine.people import team
from engine.people.own_record import is_opted_out
from engine.sqltime import local_date
from web import db

VIEWER_ROLES = ("wellbeing", "auditor")  # may view anyone's record, with a reason


def _today() -> date:
    return local_date(db.now())


def _cached(key: tuple, compute) -> Any:
    cache = g.setdefault("tt_access", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def is_supervisor(user, **_: Any) -> bool:
    """Whether the user supervises anyone in post today (people feed, not a role)."""

    def compute() -> bool:
        return team.is_supervisor(db.reads(), user.staff_id, _today())

    return _cached(("is_supervisor", user.staff_id), compute)


may_see_team = is_supervisor


def supervises(user, staff_id: str) -> bool:
    """Whether the user is `staff_id`'s supervisor in force today, directly or down the chain."""

    def compute() -> bool:
        return team.supervises(db.reads(), user.staff_id, staff_id, _today())

    return _cached(("supervises", user.staff_id, staff_id), compute)


def _opted_out(staff_id: str) -> bool:
    def compute() -> bool:
        return is_opted_out(db.reads(), staff_id)

    return _cached(("opted_out", staff_id), compute)


def _known(staff_id: str) -> bool:
    def compute() -> bool:
        return team.version_on(db.reads(), staff_id, date.max) is not None

    return _cached(("known", staff_id), compute)


def is_self(user, staff_id: str, **_: Any) -> bool:
    return user.staff_id == staff_id


def may_view_person(user, staff_id: str, **_: Any) -> bool:
    """The person themselves, or (for someone known and not opted out) their supervisor in
    force, wellbeing or an auditor. Anyone but the person must give a reason (needs_reason)."""
    if user.staff_id == staff_id:
        return True
    if "\x00" in staff_id or not _known(staff_id) or _opted_out(staff_id):
        return False
    return any(user.has(role) for role in VIEWER_ROLES) or supervises(user, staff_id)


def only_auditing(user, staff_id: str) -> bool:
    """Whether the user may open `staff_id`'s record only as an auditor (not the person,
    not wellbeing, not their supervisor in force). Then the reason must be `audit`: auditors
    see the exposure detail behind decisions only for audit (issue 12), and the person must
    never read a reason that isn't true."""
    return (
        user.staff_id != staff_id
        and user.has("auditor")
        and not user.has("wellbeing")
        and not supervises(user, staff_id)
    )


def needs_reason(user, staff_id: str) -> bool:
    """Viewing this record writes an access-log entry, so a reason must be given first."""
    return user.staff_id != staff_id


def _alert(alert_id: int) -> Any | None:
    def compute():
        return alert_row(db.reads(), alert_id)

    return _cached(("alert", alert_id), compute)


def may_see_alert(user, alert_id: int, **_: Any) -> bool:
    """Wellbeing, or a recipient of the alert; False for an alert that does not exist."""
    if user.has("wellbeing"):
        return True  # every alert there is; the view answers 404 for one that is not
    row = _alert(alert_id)
    return row is not None and user.staff_id in recipients_of(row)


def may_act_on_alert(user, alert_id: int, **_: Any) -> bool:
    """Acknowledge or resolve: a recipient of the alert, or wellbeing (CONTRACT section 5);
    never the person it is about, even when the routing sends it to them too: their
    "no action needed" would close their supervisor's and wellbeing's alert."""
    if not may_see_alert(user, alert_id):
        return False
    row = _alert(alert_id)
    return row is None or row.staff_id != user.staff_id


def _received_alerts(user) -> bool:
    def compute() -> bool:
        return has_received_alerts(db.reads(), user.staff_id)

    return _cached(("received_alerts", user.staff_id), compute)


def may_list_alerts(user, **_: Any) -> bool:
    """Wellbeing (every alert), a supervisor, or anyone alerts were sent to (theirs only)."""
    return user.has("wellbeing") or is_supervisor(user) or _received_alerts(user)


def sees_every_alert(user) -> bool:
    """Wellbeing works the whole queue; everyone else sees the alerts sent to them."""
    return user.has("wellbeing")
