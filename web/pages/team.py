"""Team: the people I supervise now, sortable, and who joined lately (the handover list)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from web import db
from web.auth import allowed, current_user
from web.pages.nav import is_supervisor

bp = Blueprint("team", __name__)

# Sort keys a link may ask for: each reads one figure from engine.team's rows.
SORTS = {
    "name": lambda p: (p["display_name"].casefold(), p["staff_id"]),
    "serious": lambda p: len(p["serious_7d"]),
    "points_30d": lambda p: p["windows"]["30d"]["points"],
    "points_365d": lambda p: p["windows"]["365d"]["points"],
    "alerts": lambda p: p["open_alerts"],
}
DEFAULT_SORT = "serious"


def _supervisor(user, **_) -> bool:
    return is_supervisor(user)


@bp.get("/team")
@allowed(_supervisor)
def team():
    """The people I supervise today with their windows, tier-2-or-higher exposures of the last
    7 days and open alerts; opted-out people only as a count. `?sort=` and `?order=` sort on
    the server, so the table works without script."""
    from engine.team import handover, team_view

    user = current_user()
    sort = request.args.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    # Figures sort biggest first unless asked otherwise; names A to Z.
    default_order = "ascending" if sort == "name" else "descending"
    order = request.args.get("order", default_order)
    if order not in ("ascending", "descending"):
        order = default_order
    view = team_view(db.engine(), user.staff_id, db.now(), criteria=db.criteria())
    people = sorted(view["people"], key=SORTS["name"])
    people.sort(key=SORTS[sort], reverse=order == "descending")
    joined = handover(db.engine(), user.staff_id, db.now(), criteria=db.criteria())
    return render_template(
        "team/team.html",
        people=people,
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
