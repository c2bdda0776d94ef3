"""running as a service (scheduler jobs, sources and heartbeat)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _text():
    # Text compares by its bytes on PostgreSQL, as in every other table (migration 0006).
    return sqlmodel.sql.sqltypes.AutoString().with_variant(sa.String(collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'service_runs',
        sa.Column('name', _text(), nullable=False),
        sa.Column('kind', _text(), nullable=False),
        sa.Column('last_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_success_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_failure_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text().with_variant(sa.Text(collation='C'), 'postgresql'),
                  nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('instance', _text(), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('service_runs')
