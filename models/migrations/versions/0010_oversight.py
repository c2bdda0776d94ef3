"""the wellbeing queue (team members, alert assignments)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlmodel.sql.sqltypes import AutoString


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _text():
    # Text compares by its bytes on PostgreSQL, as every tracker column does (0006).
    return AutoString().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "wellbeing_members",
        sa.Column("staff_id", _text(), nullable=False),
        sa.Column("display_name", _text(), nullable=False),
        sa.Column("first_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_table(
        "alert_assignments",
        sa.Column("alert_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("assignee_id", _text(), nullable=False),
        sa.Column("assigned_by", _text(), nullable=False),
        sa.Column("assigned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index(
        "ix_alert_assignments_assignee_id", "alert_assignments", ["assignee_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alert_assignments_assignee_id", table_name="alert_assignments")
    op.drop_table("alert_assignments")
    op.drop_table("wellbeing_members")
