"""notification delivery (outbox leases, channel health, digests)

The outbox gets what a dispatcher needs to claim a row safely (a lease and who holds it)
and the idempotency key of the message a row went out in; channel health records what the
last sends found.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _text(kind=sqlmodel.sql.sqltypes.AutoString):
    # New text columns compare bytewise on PostgreSQL, like the rest (0006).
    bytewise = sa.Text(collation='C') if kind is sa.Text else sa.String(collation='C')
    return kind().with_variant(bytewise, 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('claimed_by', _text(), nullable=True))
        batch.add_column(sa.Column('message_key', _text(), nullable=True))
    op.create_table(
        'channel_health',
        sa.Column('channel', _text(), nullable=False),
        sa.Column('healthy', sa.Boolean(), nullable=False),
        sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('last_success_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_failure_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_error', _text(sa.Text), nullable=True),
        sa.PrimaryKeyConstraint('channel'),
    )


def downgrade() -> None:
    op.drop_table('channel_health')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('message_key')
        batch.drop_column('claimed_by')
        batch.drop_column('lease_until')
