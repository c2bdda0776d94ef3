"""Tables the wellbeing team's queue writes: who is working an alert, and who is in the team.

Roles come from sign-in (Entra ID app roles), so the database learns who is in the wellbeing
team as its members use the queue (`wellbeing_members`); an alert is assigned only to one of
them. An assignment goes with its alert (a foreign key that cascades), so opting out, which
deletes the person's alerts, deletes their assignments too.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models import compare_text_bytewise
from models import rules as _alerts  # noqa: F401  (the table the foreign key names)


class WellbeingMember(SQLModel, table=True):
    """A member of the wellbeing team, as last seen using the queue."""

    __tablename__ = "wellbeing_members"

    staff_id: str = Field(primary_key=True)
    display_name: str
    first_seen_at: datetime
    last_seen_at: datetime


class AlertAssignment(SQLModel, table=True):
    """The wellbeing team member working an alert now; each change is also an alert event."""

    __tablename__ = "alert_assignments"

    alert_id: int = Field(
        primary_key=True,
        foreign_key="alerts.id",
        ondelete="CASCADE",
        sa_column_kwargs={"autoincrement": False},
    )
    assignee_id: str = Field(index=True)
    assigned_by: str
    assigned_at: datetime


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
