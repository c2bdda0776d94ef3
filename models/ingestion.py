"""What ingestion records about itself: runs, quarantined rows, held rows, watermarks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class IngestRun(SQLModel, table=True):
    """One batch (a file, an HTTP page, a SQL chunk) and what became of it."""

    __tablename__ = "ingest_runs"

    id: int | None = Field(default=None, primary_key=True)
    source: str  # file path, URL or `sql:<name>`
    feed: str | None = None
    content_hash: str | None = Field(default=None, index=True)
    started_at: datetime
    finished_at: datetime | None = None
    # ok: stored; duplicate: same content as an earlier ok run, nothing done; failed: nothing stored
    outcome: str
    rows: int = 0
    accepted: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    held: int = 0
    linked: int = 0
    message: str | None = Field(default=None, sa_column=Column(Text))


class QuarantinedRow(SQLModel, table=True):
    """A row that could not be used, with where it was and why; the raw row is kept."""

    __tablename__ = "quarantined_rows"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True)
    source: str
    line: int
    field: str | None = None
    reason: str
    raw: str = Field(sa_column=Column(Text, nullable=False))  # JSON object of the row as read


class HeldRow(SQLModel, table=True):
    """A valid row naming a person not yet known; stored once the person arrives."""

    __tablename__ = "held_rows"
    __table_args__ = (UniqueConstraint("feed", "row_key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True)
    feed: str
    row_key: str  # the natural key as JSON, so a re-sent row replaces its earlier copy
    source: str
    line: int
    staff_id: str = Field(index=True)
    raw: str = Field(sa_column=Column(Text, nullable=False))  # JSON object of the row as read
    held_at: datetime
    linked_at: datetime | None = None
    linked_run_id: int | None = None


class SourceWatermark(SQLModel, table=True):
    """How far a pulled source (HTTP, SQL) has been read."""

    __tablename__ = "source_watermarks"

    source_key: str = Field(primary_key=True)
    watermark: str
    updated_at: datetime


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
