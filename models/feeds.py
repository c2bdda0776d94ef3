"""Tables for the force's eight feeds, one row per natural key (people: per version).

Times are timezone-aware UTC (SQLModel refuses naive ones); dates are calendar dates.
`run_id` names the ingest run that last changed the row. Columns carry the feed's field
names, so rows map to feeds one to one. Secondary indexes are only those a query needs, and
preferably on columns that grow with time: an index in another order (by person, say) takes
a random insert per loaded row and can halve the bulk-load rate of a large table.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise

ONLY_ON = "tt_only_on"  # the `info` key naming the one dialect a schema item is built on
BRIN = {"postgresql_using": "brin", "postgresql_with": {"autosummarize": "on"}}


def growing_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """Indexes on columns whose values grow as rows arrive: `run_id`, by which scoring
    (engine/scoring/exposures.py) finds what changed since its last evaluation, and a record's time.

    On PostgreSQL they are one BRIN index, a summary of each range of pages that costs
    almost nothing to keep up while loading, where a b-tree costs about a fifth of a large
    load (bench/ingest.py). A query on any of its columns uses it, and one index over
    several columns is kept up and summarised once per row and range, not once per column.
    autosummarize keeps newly loaded pages summarised. SQLite has only b-trees: one per
    column.
    """
    if len(columns) == 1:
        return (Index(f"ix_{table}_{columns[0]}", columns[0], **BRIN),)
    return (
        only_on("postgresql", Index(f"ix_{table}_{'_'.join(columns)}", *columns, **BRIN)),
        *(only_on("sqlite", Index(f"ix_{table}_{column}", column)) for column in columns),
    )


def only_on(dialect: str, index: Index) -> Index:
    """`index`, built by create_all only on `dialect`, and marked so for `built_on`.

    SQLAlchemy keeps a `ddl_if` condition in a private attribute, so the dialect is also
    written where anyone may read it: the index's `info`.
    """
    index.info[ONLY_ON] = dialect
    return index.ddl_if(dialect=dialect)


def built_on(schema_item, dialect: str) -> bool:
    """Whether the schema has this table, column, index or constraint on `dialect`: the
    migrations' and Alembic's comparison's filter (see `growing_indexes`)."""
    only = (getattr(schema_item, "info", None) or {}).get(ONLY_ON)
    return only in (None, dialect)


class Unit(SQLModel, table=True):
    __tablename__ = "units"

    unit_id: str = Field(primary_key=True)
    parent_id: str | None = None
    level: str
    name: str
    run_id: int | None = None


class PersonVersion(SQLModel, table=True):
    """One version of a person: a later `valid_from` records a move of team or supervisor."""

    __tablename__ = "people"

    staff_id: str = Field(primary_key=True)
    valid_from: date = Field(primary_key=True)
    display_name: str
    email: str | None = None
    collar_number: str | None = None
    staff_type: str
    rank_or_grade: str | None = None
    role_group: str = Field(index=True)
    unit_id: str = Field(index=True)
    supervisor_id: str | None = Field(default=None, index=True)
    service_start: date
    leave_date: date | None = None
    run_id: int | None = None


class Incident(SQLModel, table=True):
    __tablename__ = "cc_incidents"

    # Deployments with no arrival time count at their incident's creation (deployments_30d).
    __table_args__ = growing_indexes("cc_incidents", "run_id", "created_at")

    incident_urn: str = Field(primary_key=True)
    created_at: datetime
    closed_at: datetime | None = None
    opening_code: str | None = None
    closing_code: str
    qualifiers: str | None = None  # `|`-joined
    grade: str | None = None
    unit_id: str | None = None
    run_id: int | None = None


class Deployment(SQLModel, table=True):
    __tablename__ = "cc_deployments"
    # Recent deployments (deployments_30d) by time, not by person: rows arrive in time order,
    # so this index grows at its end, where one by person would take a random insert per row.
    __table_args__ = growing_indexes("cc_deployments", "run_id", "arrived_at")
    incident_urn: str = Field(primary_key=True)
    staff_id: str = Field(primary_key=True)
    role: str = Field(primary_key=True)
    arrived_at: datetime | None = None
    cleared_at: datetime | None = None
    run_id: int | None = None


class Occurrence(SQLModel, table=True):
    __tablename__ = "rms_occurrences"
    __table_args__ = growing_indexes("rms_occurrences", "run_id")

    occurrence_ref: str = Field(primary_key=True)
    reported_at: datetime
    hocr_code: str
    crime_flags: str | None = None  # `|`-joined
    iioc_category: str | None = None
    status: str
    # Open investigations at a moment: those closed after it, or not closed.
    closed_at: datetime | None = Field(default=None, index=True)
    linked_incident_urn: str | None = Field(default=None, index=True)
    unit_id: str | None = None
    run_id: int | None = None


class Involvement(SQLModel, table=True):
    __tablename__ = "rms_involvements"
    __table_args__ = growing_indexes("rms_involvements", "run_id")

    occurrence_ref: str = Field(primary_key=True)
    staff_id: str = Field(primary_key=True)
    role: str = Field(primary_key=True)
    assigned_at: datetime = Field(primary_key=True)
    unassigned_at: datetime | None = None
    run_id: int | None = None


class RestDayCancellation(SQLModel, table=True):
    __tablename__ = "rest_day_cancellations"

    cancellation_id: str = Field(primary_key=True)
    staff_id: str = Field(index=True)
    rest_day: date
    notified_on: date
    status: str = "cancelled"
    run_id: int | None = None


class Absence(SQLModel, table=True):
    __tablename__ = "absences"

    spell_id: str = Field(primary_key=True)
    staff_id: str = Field(index=True)
    start_date: date
    end_date: date | None = None
    absence_type: str
    reason_group: str | None = None
    working_days_lost: float | None = None
    run_id: int | None = None


FEED_TABLES: dict[str, type[SQLModel]] = {
    "units": Unit,
    "people": PersonVersion,
    "cc_incidents": Incident,
    "cc_deployments": Deployment,
    "rms_occurrences": Occurrence,
    "rms_involvements": Involvement,
    "rest_day_cancellations": RestDayCancellation,
    "absences": Absence,
}


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
