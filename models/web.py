"""Tables the web app writes: the access log and conversation requests.

Neither is derived data: an access-log entry is the record that someone looked at another
person's record and why (the person sees it on their Me page), and a conversation request is
the person's own action. Opting out deletes neither.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class AccessLogEntry(SQLModel, table=True):
    """One view of another person's record: who looked, whose record, when, and why."""

    __tablename__ = "access_log"
    # A person's own log, newest first; the auditor's search by viewer.
    __table_args__ = (
        Index("ix_access_log_staff_id_at", "staff_id", "at"),
        Index("ix_access_log_viewer_id", "viewer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    viewer_id: str  # the viewer's staff id
    staff_id: str  # whose record was viewed
    reason: str  # welfare_conversation | alert_review | audit | other
    note: str | None = Field(default=None, sa_column=Column(Text))
    what: str  # person (the record page or API), alert (an alert about the person)


class ConversationRequest(SQLModel, table=True):
    """A person asked for a welfare conversation; `outbox_ids` (JSON) are its notifications."""

    __tablename__ = "conversation_requests"
    __table_args__ = (Index("ix_conversation_requests_staff_id_at", "staff_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    staff_id: str
    target: str  # supervisor | wellbeing
    recipient: str  # the supervisor's staff id, or the wellbeing team's address
    outbox_ids: str = Field(sa_column=Column(Text, nullable=False))


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
