"""Team: the people I supervise now, sortable, and who joined lately (the handover list)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from web import db
from web.auth import allowed, current_user
from web.pages.nav import is_supervisor

bp = Blueprint("team", __name__)

DEFAULT_SORT = "serious"


def _supervisor(user, **_) -> bool:
    return is_supervisor(user)


@bp.get("/team")
@allowed(_supervisor)
def team():
    """The people I supervise today with their windows, tier-2-or-higher exposures of the last
    7 days and open alerts; opted-out people only as a count. `?sort=` and `?order=` sort the
    whole team on the server, so the table works without script; `?page=` shows 50 of them at
    a time (engine.people.team_page: a chief constable's team is the whole force)."""
    from engine.people.team import handover
    from engine.people.team_page import SORTS, team_page

    user = current_user()
    sort = request.args.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    # Figures sort biggest first unless asked otherwise; names A to Z.
    default_order = "ascending" if sort == "name" else "descending"
    order = request.args.get("order", default_order)
    if order not in ("ascending", "descending"):
        order = default_order
    text = request.args.get("page", "1")
    page = int(text) if text.isdigit() and len(text) < 7 else 1
    view = team_page(
        db.engine(),
        user.staff_id,
        db.now(),
        sort=sort,
        descending=order == "descending",
        page=page,
        criteria=db.criteria(),
    )
    joined = handover(
        db.engine(), user.staff_id, db.now(), criteria=db.criteria(), chain=view["chain"]
    )
    return render_template(
        "team/team.html",
        people=view["people"],
        total=view["total"],
        page=view["page"],
        pages=view["pages"],
        first=view["first"],
        figures_as_of=view["figures_as_of"],
        opted_out_count=view["opted_out_count"],
        handover=joined,
        sort=sort,
        order=order,
        columns=(
            ("name", "Name"),
            ("points_30d", "Points, 30 days"),
            ("points_365d", "Points, 12 months"),
            ("serious", "Serious exposures, last 7 days"),
            ("alerts", "Open alerts"),
        ),
    )
