"""the web app (access log, conversation requests)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlmodel.sql.sqltypes import AutoString


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _text():
    return AutoString().with_variant(sa.String(collation="C"), "postgresql")


def _long_text():
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("viewer_id", _text(), nullable=False),
        sa.Column("staff_id", _text(), nullable=False),
        sa.Column("reason", _text(), nullable=False),
        sa.Column("note", _long_text(), nullable=True),
        sa.Column("what", _text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_log_staff_id_at", "access_log", ["staff_id", "at"])
    op.create_index("ix_access_log_viewer_id", "access_log", ["viewer_id"])
    op.create_table(
        "conversation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("staff_id", _text(), nullable=False),
        sa.Column("target", _text(), nullable=False),
        sa.Column("recipient", _text(), nullable=False),
        sa.Column("outbox_ids", _long_text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_conversation_requests_staff_id_at", "conversation_requests", ["staff_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_requests_staff_id_at", table_name="conversation_requests")
    op.drop_table("conversation_requests")
    op.drop_index("ix_access_log_viewer_id", table_name="access_log")
    op.drop_index("ix_access_log_staff_id_at", table_name="access_log")
    op.drop_table("access_log")
