"""Tables for running as a service: what each scheduler job and source last did, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class ServiceRun(SQLModel, table=True):
    """One scheduler job (`intake`, `evaluate`, `dispatch`, ...), one source (`source:NAME`),
    or the active scheduler itself (`scheduler`, its heartbeat): when it last started,
    succeeded and failed. /readyz and /metrics read it; the scheduler writes it."""

    __tablename__ = "service_runs"

    name: str = Field(primary_key=True)
    kind: str  # job | source | scheduler
    last_started_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    # The exception's type and message, without SQL parameters (no names or incident detail).
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    failures: int = 0  # failures since the last success
    instance: str | None = None  # host:pid of the scheduler that ran it


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
