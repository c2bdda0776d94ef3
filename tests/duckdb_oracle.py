"""The DuckDB oracle: what an analyst with a BI tool would compute, windowed points per
person straight from the CSVs, to check the tracker against.

DuckDB reads the feed files and computes each person's exposures and windowed points with
one query, written independently of engine/scoring/exposures.py (its own SQL for categories: lists
split into arrays, not string search) but to the same definitions (CONTRACT section 2):
category by precedence, points = tier points x role multiplier, one exposure per person per
incident (a deployment and its linked occurrence share `cc:<urn>`), the higher-scoring
record kept with the same tie-breaks, the history horizon applied to the kept exposure, and
windows `as_of - N x 24h < at <= as_of`. The evaluation moment is applied first: a record
dated after it does not exist yet at that moment, so it can't be paired with (and win over)
one dated before. Used by tests/engine/test_incremental.py and bench/scoring.py, which
check that the two agree exactly. It is a test's oracle, so it lives with the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.scoring.criteria import Criteria
from engine.scoring.indicators import WINDOWS

FEEDS = ("cc_incidents", "cc_deployments", "rms_occurrences", "rms_involvements")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _condition(condition) -> str:
    values = ", ".join(_literal(v) for v in condition.values)
    if condition.membership:
        items = f"string_split(coalesce({condition.column}, ''), '|')"
        return f"list_has_any({items}, [{values}])"
    return f"{condition.column} IN ({values})"


def _category_case(criteria: Criteria, feed: str) -> str:
    branches = []
    for category in criteria.by_precedence:
        entries = [
            "(" + " AND ".join(_condition(c) for c in m.conditions) + ")"
            for m in category.match
            if m.feed == feed
        ]
        if entries:
            branches.append(f"WHEN {' OR '.join(entries)} THEN {_literal(category.id)}")
    return f"CASE {' '.join(branches)} END" if branches else "NULL"


def points_query(feeds_dir: Path, criteria: Criteria, as_of: datetime, history_days: int) -> str:
    def read(feed: str) -> str:
        pattern = str(Path(feeds_dir) / f"{feed}*.csv")
        return f"read_csv({_literal(pattern)}, header = true, all_varchar = true)"

    tiers = " ".join(f"WHEN {_literal(c.id)} THEN {c.tier}" for c in criteria.categories)
    tier_points = " ".join(
        f"WHEN {_literal(c.id)} THEN {float(criteria.tiers[c.tier])!r}" for c in criteria.categories
    )
    multipliers = " ".join(
        f"WHEN {_literal(r)} THEN {float(m)!r}" for r, m in criteria.roles.items()
    )
    roles = ", ".join(_literal(r) for r in criteria.roles)

    def at(moment: datetime) -> str:
        # Window starts are computed here, in UTC: N x 24 hours, as the engine counts them.
        # (DuckDB's `- INTERVAL 30 DAY` on a London TIMESTAMPTZ counts calendar days, an hour
        # longer or shorter across a clock change.)
        return f"{_literal(moment.astimezone(UTC).isoformat())}::TIMESTAMPTZ"

    moment = at(as_of)
    oldest = at(as_of - timedelta(days=history_days))
    windows = ",\n".join(
        f"round(sum(points) FILTER (WHERE moment > {at(as_of - timedelta(days=days))}), 3)"
        f" AS points_{name}, count(*) FILTER (WHERE moment > "
        f"{at(as_of - timedelta(days=days))}) AS exposures_{name}"
        for name, days in WINDOWS.items()
    )
    return f"""
WITH
incidents AS (SELECT *, {_category_case(criteria, "cc_incidents")} AS category
              FROM {read("cc_incidents")}),
occurrences AS (SELECT *, {_category_case(criteria, "rms_occurrences")} AS category
                FROM {read("rms_occurrences")}),
candidates AS (
  SELECT d.staff_id, 'cc:' || i.incident_urn AS incident_key, 'cc_incidents' AS feed,
         i.incident_urn AS ref, d.role,
         CAST(coalesce(d.arrived_at, i.created_at) AS TIMESTAMPTZ) AS moment, i.category
  FROM {read("cc_deployments")} d JOIN incidents i USING (incident_urn)
  WHERE i.category IS NOT NULL AND d.role IN ({roles})
  UNION ALL
  SELECT v.staff_id, coalesce('cc:' || o.linked_incident_urn, 'rms:' || o.occurrence_ref),
         'rms_occurrences', o.occurrence_ref, v.role, CAST(v.assigned_at AS TIMESTAMPTZ),
         o.category
  FROM {read("rms_involvements")} v JOIN occurrences o USING (occurrence_ref)
  WHERE o.category IS NOT NULL AND v.role IN ({roles})
),
known AS (  -- what exists at the moment, before any pairing
  SELECT * FROM candidates WHERE moment <= {moment}
),
scored AS (
  SELECT *, CASE category {tiers} END AS tier,
         round((CASE category {tier_points} END) * (CASE role {multipliers} END), 3) AS points
  FROM known
),
exposures AS (
  SELECT * FROM scored
  QUALIFY row_number() OVER (PARTITION BY staff_id, incident_key
                             ORDER BY points DESC, tier DESC, moment, feed, ref, role) = 1
)
SELECT staff_id,
{windows}
FROM exposures
WHERE moment > {oldest}
GROUP BY staff_id
"""


def duckdb_points(
    feeds_dir: Path, criteria: Criteria, as_of: datetime, history_days: int
) -> dict[str, dict[str, float | int]]:
    """Each person's `points_<window>` and `exposures_<window>` at `as_of`, from the CSVs."""
    import duckdb

    connection = duckdb.connect()
    try:
        # No offset in a feed means London time (CONTRACT section 1).
        connection.execute("SET TimeZone = 'Europe/London'")
        cursor = connection.execute(points_query(feeds_dir, criteria, as_of, history_days))
        columns = [d[0] for d in cursor.description]
        result = {}
        for row in cursor.fetchall():
            values = dict(zip(columns, row, strict=True))
            staff = values.pop("staff_id")
            result[staff] = {
                k: (float(v or 0) if k.startswith("points") else int(v)) for k, v in values.items()
            }
        return result
    finally:
        connection.close()
