"""The service navigation: what the signed-in person can open, and nothing they can't."""

from __future__ import annotations

from flask import request, url_for

from web.auth import User
from web.pages import oversight_nav


def is_supervisor(user: User) -> bool:
    """Whether anyone's supervisor in force today is this user (web.access decides)."""
    from web import access

    return access.is_supervisor(user)


def items(user: User | None) -> list[dict]:
    from web import access

    if user is None:
        return []
    links = [("My record", url_for("me.dashboard"), "/me")]
    if access.may_see_team(user):
        links.append(("My team", url_for("team.team"), "/team"))
    if access.may_list_alerts(user):
        links.append(("Alerts", url_for("alerts.my_alerts"), "/alerts"))
    links += oversight_nav.links(user)  # issue 12's pages, by role
    return [
        {"text": text, "href": href, "active": request.path.startswith(prefix)}
        for text, href, prefix in links
    ]
