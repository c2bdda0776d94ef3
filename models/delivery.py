"""Tables for delivering notifications: the health of each channel. The outbox itself is
`models.rules.OutboxMessage` (written in the alert's transaction)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class ChannelHealth(SQLModel, table=True):
    """A channel (email, teams) as the last sends found it. A permanent failure marks it
    unhealthy; the next successful send marks it healthy again."""

    __tablename__ = "channel_health"

    channel: str = Field(primary_key=True)
    healthy: bool = True
    changed_at: datetime
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
