"""Scoring: deployments and involvements into exposures, in set-based SQL.

The criteria compile into SQL: a CASE picks each record's category (highest tier first, then
as listed), and the role picks the multiplier. Every matching record about an incident is a
candidate; the exposure is, per person and incident, the candidate with the most points (then
the higher tier, the earlier time, then feed, reference and role, so that the choice is
stable). That is what makes a deployment and an involvement in its linked occurrence one
exposure: both carry the incident key `cc:<incident_urn>`.

Three entry points share one statement: `rescore_all` (everything), `rescore_changed` (the
(person, incident) groups that ingest runs after a watermark touched) and `rescore_people`
(everything about a few people, for opt-in). Each deletes the groups it covers and inserts
their exposures again, so all three produce the same rows for the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.scoring.criteria import Criteria
from engine.sqltime import bind_datetime

SCOPE = "tt_scope"


class CriteriaSQL:
    """The criteria as SQL fragments for one dialect; values travel as bound parameters."""

    def __init__(self, criteria: Criteria, dialect: str):
        self.criteria = criteria
        self.dialect = dialect
        self.params: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"c{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _condition(self, alias: str, condition) -> str:
        column = f"{alias}.{condition.column}"
        if condition.membership:
            # `|CHILD|` inside `|A|CHILD|B|`: exact, case-sensitive on both databases (LIKE
            # is case-insensitive on SQLite and treats `_` in codes as a wildcard).
            find = (
                "instr({hay}, {needle})" if self.dialect == "sqlite" else "strpos({hay}, {needle})"
            )
            hay = f"('|' || {column} || '|')"
            tests = [
                find.format(hay=hay, needle=self._bind(f"|{value}|")) + " > 0"
                for value in condition.values
            ]
            return "(" + " OR ".join(tests) + ")"
        if len(condition.values) == 1:
            return f"{column} = {self._bind(condition.values[0])}"
        return f"{column} IN ({', '.join(self._bind(v) for v in condition.values)})"

    def _category_test(self, alias: str, feed: str, category) -> str | None:
        entries = [
            " AND ".join(self._condition(alias, c) for c in match.conditions)
            for match in category.match
            if match.feed == feed
        ]
        return " OR ".join(f"({e})" for e in entries) if entries else None

    def category_case(self, alias: str, feed: str) -> tuple[str, str] | None:
        """(CASE giving the category id, condition true when any category matches), or None
        when no category looks at this feed."""
        branches, tests = [], []
        for category in self.criteria.by_precedence:
            test = self._category_test(alias, feed, category)
            if test is None:
                continue
            branches.append(f"WHEN {test} THEN '{category.id}'")
            tests.append(f"({test})")
        if not branches:
            return None
        return f"CASE {' '.join(branches)} END", " OR ".join(tests)

    def roles(self) -> str:
        return ", ".join(f"'{role}'" for role in self.criteria.roles)

    def tier_case(self, column: str) -> str:
        whens = " ".join(f"WHEN '{c.id}' THEN {c.tier}" for c in self.criteria.categories)
        return f"CASE {column} {whens} END"

    def points_case(self, category: str, role: str) -> str:
        # Constants computed (and rounded) in Python, so every database stores the same value.
        whens = []
        for c in self.criteria.categories:
            per_role = " ".join(
                f"WHEN '{r}' THEN {self.criteria.points(c, r)!r}" for r in self.criteria.roles
            )
            whens.append(f"WHEN '{c.id}' THEN CASE {role} {per_role} END")
        return f"CASE {category} {' '.join(whens)} END"


def _candidates(sql: CriteriaSQL, scoped: bool) -> str:
    """Every record that matches a category, with the person's role and the record's time.

    Scoped, the rows start from the groups in SCOPE; otherwise from every incident and
    occurrence. SQLite has no statistics on these tables, so its CROSS JOIN fixes the order
    (the few rows first, then primary-key lookups), and a `+` stops it from using the
    linked_incident_urn index for `IS NULL`, which would visit every unlinked occurrence.
    """
    sqlite = sql.dialect == "sqlite"
    join = "CROSS JOIN" if sqlite else "JOIN"
    unindexed = "+" if sqlite else ""
    parts = []
    incident = sql.category_case("i", "cc_incidents")
    if incident:
        case, matches = incident
        select = (
            "SELECT d.staff_id AS staff_id, 'cc:' || i.incident_urn AS incident_key, "
            "'cc_incidents' AS feed, i.incident_urn AS ref, d.role AS role, "
            f"COALESCE(d.arrived_at, i.created_at) AS at, {case} AS category "
        )
        if scoped:
            source = (
                f"FROM {SCOPE} g {join} cc_deployments d ON d.incident_urn = g.incident_urn "
                f"AND d.staff_id = g.staff_id {join} cc_incidents i "
                "ON i.incident_urn = d.incident_urn "
            )
        else:
            source = (
                f"FROM cc_incidents i {join} cc_deployments d ON d.incident_urn = i.incident_urn "
            )
        parts.append(f"{select}{source}WHERE ({matches}) AND d.role IN ({sql.roles()})")
    occurrence = sql.category_case("o", "rms_occurrences")
    if occurrence:
        case, matches = occurrence
        columns = (
            "v.staff_id AS staff_id, {key} AS incident_key, 'rms_occurrences' AS feed, "
            "o.occurrence_ref AS ref, v.role AS role, v.assigned_at AS at, "
            f"{case} AS category "
        )
        where = f"WHERE ({matches}) AND v.role IN ({sql.roles()})"
        involvement = f"{join} rms_involvements v ON v.occurrence_ref = o.occurrence_ref"
        if scoped:
            parts.append(
                "SELECT "
                + columns.format(key="'cc:' || o.linked_incident_urn")
                + f"FROM {SCOPE} g "
                f"{join} rms_occurrences o ON o.linked_incident_urn = g.incident_urn "
                f"{involvement} AND v.staff_id = g.staff_id {where}"
            )
            parts.append(
                "SELECT "
                + columns.format(key="'rms:' || o.occurrence_ref")
                + f"FROM {SCOPE} g {join} rms_occurrences o "
                f"ON o.occurrence_ref = g.occurrence_ref "
                f"{involvement} AND v.staff_id = g.staff_id "
                f"{where} AND {unindexed}o.linked_incident_urn IS NULL"
            )
        else:
            key = "COALESCE('cc:' || o.linked_incident_urn, 'rms:' || o.occurrence_ref)"
            parts.append(
                "SELECT "
                + columns.format(key=key)
                + f"FROM rms_occurrences o {involvement} {where}"
            )
    return " UNION ALL ".join(parts)


def _insert_exposures(
    conn: sa.Connection,
    criteria: Criteria,
    *,
    scoped: bool,
    horizon: datetime,
    scored_at: datetime,
) -> None:
    sql = CriteriaSQL(criteria, conn.dialect.name)
    candidates = _candidates(sql, scoped)
    if not candidates:
        return
    # Byte order on both databases (PostgreSQL would otherwise sort text by its locale).
    collate = ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""
    tie_break = ", ".join(f"{column}{collate}" for column in ("feed", "ref", "role"))
    statement = (
        "INSERT INTO exposures (staff_id, incident_key, feed, ref, role, at, category, tier, "
        "points, criteria_version, scored_at) "
        "SELECT staff_id, incident_key, feed, ref, role, at, category, tier, points, "
        ":version, :scored_at FROM ("
        " SELECT s.*, ROW_NUMBER() OVER (PARTITION BY staff_id, incident_key"
        f"  ORDER BY points DESC, tier DESC, at, {tie_break}) AS rn"
        " FROM ("
        "  SELECT c.staff_id, c.incident_key, c.feed, c.ref, c.role, c.at, c.category,"
        f"  {sql.tier_case('c.category')} AS tier,"
        f"  {sql.points_case('c.category', 'c.role')} AS points"
        f"  FROM ({candidates}) c"
        "  WHERE NOT EXISTS (SELECT 1 FROM opt_outs x WHERE x.staff_id = c.staff_id)"
        " ) s"
        ") r WHERE rn = 1 AND at > :horizon"
    )
    # The horizon applies to the chosen exposure, not to candidates: dropping an old
    # candidate first could let a lower-scoring newer one win, and the incremental path
    # (which trims chosen exposures) would then disagree with a full rescore.
    dialect = conn.dialect.name
    conn.execute(
        sa.text(statement),
        {
            **sql.params,
            "version": criteria.version,
            "scored_at": bind_datetime(dialect, scored_at),
            "horizon": bind_datetime(dialect, horizon),
        },
    )


def rescore_all(
    conn: sa.Connection, criteria: Criteria, *, horizon: datetime, scored_at: datetime
) -> int:
    """Replace every exposure; returns how many there are now."""
    conn.execute(sa.text("DELETE FROM exposures"))
    _insert_exposures(conn, criteria, scoped=False, horizon=horizon, scored_at=scored_at)
    return conn.execute(sa.text("SELECT COUNT(*) FROM exposures")).scalar_one()


# What a change since the watermark touches: (person, incident key) groups. `{J}` is the join
# keyword: SQLite, with no statistics on these tables, is told the order (CROSS JOIN): start
# from the few changed rows found through the run_id indexes.
_CHANGED_GROUPS = (
    # a changed deployment
    "SELECT d.staff_id AS staff_id, 'cc:' || d.incident_urn AS incident_key "
    "FROM cc_deployments d WHERE d.run_id > :since",
    # every deployment to a changed incident (re-coded, re-qualified)
    "SELECT d.staff_id, 'cc:' || d.incident_urn FROM cc_incidents i "
    "{J} cc_deployments d ON d.incident_urn = i.incident_urn WHERE i.run_id > :since",
    # involvements in occurrences linked to a changed incident
    "SELECT v.staff_id, 'cc:' || i.incident_urn FROM cc_incidents i "
    "{J} rms_occurrences o ON o.linked_incident_urn = i.incident_urn "
    "{J} rms_involvements v ON v.occurrence_ref = o.occurrence_ref WHERE i.run_id > :since",
    # a changed involvement
    "SELECT v.staff_id, COALESCE('cc:' || o.linked_incident_urn, 'rms:' || o.occurrence_ref) "
    "FROM rms_involvements v {J} rms_occurrences o ON o.occurrence_ref = v.occurrence_ref "
    "WHERE v.run_id > :since",
    # every involvement in a changed occurrence
    "SELECT v.staff_id, COALESCE('cc:' || o.linked_incident_urn, 'rms:' || o.occurrence_ref) "
    "FROM rms_occurrences o {J} rms_involvements v ON v.occurrence_ref = o.occurrence_ref "
    "WHERE o.run_id > :since",
    # exposures scored from a changed occurrence: its link may have moved it to another group
    "SELECT e.staff_id, e.incident_key FROM rms_occurrences o "
    "{J} exposures e ON e.ref = o.occurrence_ref AND e.feed = 'rms_occurrences' "
    "WHERE o.run_id > :since",
)


def _groups_of_people(count: int) -> tuple[str, ...]:
    people = ", ".join(f":p{i}" for i in range(count))
    return (
        "SELECT d.staff_id AS staff_id, 'cc:' || d.incident_urn AS incident_key "
        f"FROM cc_deployments d WHERE d.staff_id IN ({people})",
        "SELECT v.staff_id, COALESCE('cc:' || o.linked_incident_urn, 'rms:' || o.occurrence_ref) "
        "FROM rms_involvements v JOIN rms_occurrences o ON o.occurrence_ref = v.occurrence_ref "
        f"WHERE v.staff_id IN ({people})",
        f"SELECT e.staff_id, e.incident_key FROM exposures e WHERE e.staff_id IN ({people})",
    )


def _rescore_scope(
    conn: sa.Connection,
    criteria: Criteria,
    groups: Iterable[str],
    params: dict[str, Any],
    *,
    horizon: datetime,
    scored_at: datetime,
) -> int:
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {SCOPE}"))
    conn.execute(
        sa.text(
            f"CREATE TEMPORARY TABLE {SCOPE} (staff_id VARCHAR NOT NULL, "
            "incident_key VARCHAR NOT NULL, incident_urn VARCHAR, occurrence_ref VARCHAR, "
            "PRIMARY KEY (staff_id, incident_key))"
        )
    )
    join = "CROSS JOIN" if conn.dialect.name == "sqlite" else "JOIN"
    union = " UNION ".join(g.replace("{J}", join) for g in groups)
    conn.execute(
        sa.text(
            f"INSERT INTO {SCOPE} (staff_id, incident_key, incident_urn, occurrence_ref) "
            "SELECT staff_id, incident_key, "
            "CASE WHEN incident_key LIKE 'cc:%' THEN substr(incident_key, 4) END, "
            "CASE WHEN incident_key LIKE 'rms:%' THEN substr(incident_key, 5) END "
            f"FROM ({union}) changed"
        ),
        params,
    )
    count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {SCOPE}")).scalar_one()
    if count:
        conn.execute(
            sa.text(
                "DELETE FROM exposures WHERE (staff_id, incident_key) IN "
                f"(SELECT staff_id, incident_key FROM {SCOPE})"
            )
        )
        _insert_exposures(conn, criteria, scoped=True, horizon=horizon, scored_at=scored_at)
    conn.execute(sa.text(f"DROP TABLE {SCOPE}"))
    return count


def rescore_changed(
    conn: sa.Connection,
    criteria: Criteria,
    *,
    since_run: int,
    horizon: datetime,
    scored_at: datetime,
) -> int:
    """Rescore the groups that ingest runs after `since_run` touched; returns how many."""
    return _rescore_scope(
        conn,
        criteria,
        _CHANGED_GROUPS,
        {"since": since_run},
        horizon=horizon,
        scored_at=scored_at,
    )


def rescore_people(
    conn: sa.Connection,
    criteria: Criteria,
    staff_ids: list[str],
    *,
    horizon: datetime,
    scored_at: datetime,
) -> int:
    """Rescore everything about these people (opting back in); returns the groups covered."""
    if not staff_ids:
        return 0
    return _rescore_scope(
        conn,
        criteria,
        _groups_of_people(len(staff_ids)),
        {f"p{i}": s for i, s in enumerate(staff_ids)},
        horizon=horizon,
        scored_at=scored_at,
    )


def trim(conn: sa.Connection, horizon: datetime) -> int:
    """Drop exposures at or before the history horizon; returns how many went."""
    result = conn.execute(
        sa.text("DELETE FROM exposures WHERE at <= :horizon"),
        {"horizon": bind_datetime(conn.dialect.name, horizon)},
    )
    return result.rowcount
