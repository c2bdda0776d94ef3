"""Tables for the force's eight feeds, one row per natural key (people: per version).

Times are timezone-aware UTC (SQLModel refuses naive ones); dates are calendar dates.
`run_id` names the ingest run that last changed the row. Columns carry the feed's field
names, so rows map to feeds one to one. Secondary indexes are only those a query needs:
each one halves the bulk-load rate of a large table on SQLite.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

# Scoring (engine/scoring.py) finds what changed since its last evaluation by `run_id`; the
# indexes on it cost little at load time because new rows append at the index's end.


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

    incident_urn: str = Field(primary_key=True)
    created_at: datetime
    closed_at: datetime | None = None
    opening_code: str | None = None
    closing_code: str
    qualifiers: str | None = None  # `|`-joined
    grade: str | None = None
    unit_id: str | None = None
    run_id: int | None = Field(default=None, index=True)


class Deployment(SQLModel, table=True):
    __tablename__ = "cc_deployments"
    # By person and time: a person's recent deployments (deployments_30d) without a scan.
    __table_args__ = (Index("ix_cc_deployments_staff_arrived", "staff_id", "arrived_at"),)

    incident_urn: str = Field(primary_key=True)
    staff_id: str = Field(primary_key=True)
    role: str = Field(primary_key=True)
    arrived_at: datetime | None = None
    cleared_at: datetime | None = None
    run_id: int | None = Field(default=None, index=True)


class Occurrence(SQLModel, table=True):
    __tablename__ = "rms_occurrences"

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
    run_id: int | None = Field(default=None, index=True)


class Involvement(SQLModel, table=True):
    __tablename__ = "rms_involvements"

    occurrence_ref: str = Field(primary_key=True)
    staff_id: str = Field(primary_key=True, index=True)
    role: str = Field(primary_key=True)
    assigned_at: datetime = Field(primary_key=True)
    unassigned_at: datetime | None = None
    run_id: int | None = Field(default=None, index=True)


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
