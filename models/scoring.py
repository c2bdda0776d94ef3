"""What scoring derives from the feeds: exposures, indicator snapshots, evaluations, opt-outs.

Exposures and snapshots are derived data: they can always be rebuilt from the feeds and the
criteria (`evaluate --full`), and an opted-out person has none. Opt-outs and their events are
not derived: they are the person's choice and its audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class Exposure(SQLModel, table=True):
    """One person's exposure to one incident: the highest-scoring record about it.

    `incident_key` is `cc:<incident_urn>` for a C&C incident and the RMS occurrences linked to
    it, or `rms:<occurrence_ref>` for an occurrence with no linked incident; a deployment and
    an involvement in the linked occurrence are therefore one exposure.
    """

    __tablename__ = "exposures"
    # Finding the exposures that came from an occurrence whose link changed.
    __table_args__ = (Index("ix_exposures_ref", "ref"),)

    staff_id: str = Field(primary_key=True)
    incident_key: str = Field(primary_key=True)
    feed: str  # cc_incidents or rms_occurrences: the record `ref` names
    ref: str  # incident_urn or occurrence_ref
    role: str  # the person's role in it (deployment or involvement role)
    at: datetime  # arrived_at (else the incident's created_at), or assigned_at
    category: str
    tier: int
    points: float  # tiers[tier] x roles[role]
    criteria_version: str  # the criteria content hash that scored it
    scored_at: datetime


class Snapshot(SQLModel, table=True):
    """A person's indicators at an evaluation time (CONTRACT section 2, snapshot fields).

    An evaluation writes a row only for people whose figures changed; the person's row with
    `is_current` holds their figures at the newest evaluation. An evaluation of an earlier
    moment (`evaluate --as-of` in the past) writes everyone's rows, none of them current.
    """

    __tablename__ = "snapshots"
    # The current snapshots only: a small index however long the history grows, and the one
    # that finds a person's current row when a new one replaces it.
    __table_args__ = (
        Index(
            "ix_snapshots_current",
            "staff_id",
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
    )

    staff_id: str = Field(primary_key=True)
    as_of: datetime = Field(primary_key=True)
    evaluation_id: int = Field(index=True)
    is_current: bool
    criteria_version: str
    # Who the person was at `as_of`: the people version in force then.
    unit_id: str
    supervisor_id: str | None = None
    staff_type: str
    role_group: str
    rank_or_grade: str | None = None
    service_years: float
    trauma_points_7d: float
    trauma_points_30d: float
    trauma_points_90d: float
    trauma_points_365d: float
    trauma_points_5y: float
    exposures_7d: int
    exposures_30d: int
    exposures_90d: int
    exposures_365d: int
    exposures_5y: int
    tier3_exposures_30d: int
    tier3_exposures_365d: int
    tier2plus_exposures_30d: int
    trauma_points_365d_role_percentile: float
    cancelled_rest_days_30d: int
    cancelled_rest_days_90d: int
    cancelled_rest_days_365d: int
    short_notice_cancellations_90d: int
    sickness_days_90d: int
    sickness_days_365d: int
    sickness_spells_365d: int
    bradford_factor_365d: int
    absent_now: bool
    open_investigations: int
    deployments_30d: int


class Evaluation(SQLModel, table=True):
    """One run of `evaluate`: what it covered and what it wrote."""

    __tablename__ = "evaluations"

    id: int | None = Field(default=None, primary_key=True)
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None = None
    mode: str  # full | incremental
    criteria_version: str
    # The newest ingest run whose rows this evaluation scored; the next one starts after it.
    run_watermark: int
    # Exposures at or before this moment are not kept (the configured history).
    horizon: datetime
    people: int = 0  # people in post and not opted out at `as_of`
    snapshots_written: int = 0
    groups_rescored: int = 0  # (person, incident) pairs scored again


class CriteriaVersion(SQLModel, table=True):
    """Each criteria file that has scored exposures, kept so old decisions can be explained."""

    __tablename__ = "criteria_versions"

    version: str = Field(primary_key=True)
    first_used_at: datetime
    document: str = Field(sa_column=Column(Text, nullable=False))


class OptOut(SQLModel, table=True):
    """A person who has opted out: while this row exists nothing is derived about them."""

    __tablename__ = "opt_outs"

    staff_id: str = Field(primary_key=True)
    since: datetime
    actor: str


class OptOutEvent(SQLModel, table=True):
    """Every opt-out and opt-in, with who recorded it and when (never deleted)."""

    __tablename__ = "opt_out_events"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: str = Field(index=True)
    action: str  # opt_out | opt_in
    at: datetime
    actor: str
    channel: str  # cli, web


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
