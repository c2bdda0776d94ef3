"""The senior leaders' overview: exposure and alert rates by team, department and area, as a
table and a heatmap with the 12-month trend per unit, with disclosure control.

Figures come from engine.oversight.aggregates, the same ones the API and its CSV give, so
the CSV export is exactly what is shown (suppression included). A suppressed unit shows no
figure at all and says why in plain words. Opted-out people are in no figure.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from markupsafe import Markup

from engine.oversight import aggregates
from engine.oversight.disclosure import THRESHOLD
from web import db
from web.auth import allowed, has_role
from web.pages import oversight_charts

bp = Blueprint("overview", __name__)

# The same people as the API's overview (web.api_oversight.may_see_overview).
may_see_overview = has_role("leader", "wellbeing")
LEVEL_NAMES = {"team": "Teams", "department": "Departments", "area": "Areas"}
MEASURES = {
    "exposures": ("exposures_per_person", "Exposures per person"),
    "alerts": ("alerts_per_person", "Alerts per person"),
}
REASONS = {
    "primary": f"fewer than {THRESHOLD} people",
    "secondary": (
        "hidden as well, so that a small unit's figures can't be worked out by subtracting "
        "from the totals"
    ),
}


@bp.get("/overview")
@allowed(may_see_overview)
def overview():
    """`?by=team|department|area` (default team), `?measure=exposures|alerts` for the
    heatmap: the table, the heatmap with its table, and links to the CSV of each. The
    figures' HTML is made once per set of figures (every leader sees the same)."""
    by = request.args.get("by", "team")
    if by not in aggregates.LEVELS:
        by = "team"
    measure = request.args.get("measure", "exposures")
    if measure not in MEASURES:
        measure = "exposures"
    view = aggregates.current_overview(db.engine(), db.now())
    figures = view.once(("page", by, measure), lambda: _figures(view, by, measure))
    return render_template("overview/overview.html", by=by, measure=measure, figures=figures)


def _figures(view: aggregates.Overview, by: str, measure: str) -> Markup:
    """The page's figures as HTML: the table, the heatmap and its table, the CSV links."""
    cells = view.hierarchy.cells
    rows = []
    for unit_id in view.units(by):
        row = view.row(unit_id)
        row["reason"] = REASONS.get(cells[unit_id].reason) if row["suppressed"] else None
        rows.append(row)
    trend = view.trend(by)
    key, measure_label = MEASURES[measure]
    html = render_template(
        "overview/_figures.html",
        by=by,
        level_names=LEVEL_NAMES,
        rows=rows,
        total=view.total(),
        day=view.day,
        snapshot_as_of=view.snapshot_as_of,
        problems=view.hierarchy.problems,
        trend=trend,
        month_labels=[oversight_charts.month_label(m) for m in trend["months"]],
        measure=measure,
        measures=MEASURES,
        measure_key=key,
        measure_label=measure_label,
        heatmap=oversight_charts.heatmap([*trend["units"], trend["total"]], trend["months"], key),
        threshold=THRESHOLD,
        suppressed_count=sum(1 for row in rows if row["suppressed"]),
        table_csv=url_for("oversight.aggregate_csv", by=by, view="table"),
        trend_csv=url_for("oversight.aggregate_csv", by=by, view="trend"),
    )
    return Markup(html)  # noqa: S704 (our own template's output, escaped as it was rendered)
