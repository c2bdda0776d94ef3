"""indexes that grow with time

Deployments are counted per person over the last 30 days from the window's rows found by
time (arrived_at, or for deployments with no arrival time their incident's created_at)
instead of per person through a (staff_id, arrived_at) index: rows arrive in time order, so
these indexes grow at their end, where the old one took a random insert per loaded row.
Rescoring one person at opt-in, the only other user of that index and of the involvements'
staff_id index, now scans deployments and involvements once.

On PostgreSQL the run_id and time indexes of the four large feeds are BRIN (see
models.feeds.growing_index); SQLite keeps its b-trees on run_id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:10:00
"""

from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

RUN_ID_TABLES = ('cc_incidents', 'cc_deployments', 'rms_occurrences', 'rms_involvements')
BRIN = {'postgresql_using': 'brin', 'postgresql_with': {'autosummarize': 'on'}}


def upgrade() -> None:
    op.drop_index('ix_cc_deployments_staff_arrived', table_name='cc_deployments')
    op.drop_index('ix_rms_involvements_staff_id', table_name='rms_involvements')
    op.create_index('ix_cc_deployments_arrived_at', 'cc_deployments', ['arrived_at'], **BRIN)
    op.create_index('ix_cc_incidents_created_at', 'cc_incidents', ['created_at'], **BRIN)
    if op.get_bind().dialect.name == 'postgresql':
        for table in RUN_ID_TABLES:
            op.drop_index(f'ix_{table}_run_id', table_name=table)
            op.create_index(f'ix_{table}_run_id', table, ['run_id'], **BRIN)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in RUN_ID_TABLES:
            op.drop_index(f'ix_{table}_run_id', table_name=table)
            op.create_index(f'ix_{table}_run_id', table, ['run_id'])
    op.drop_index('ix_cc_incidents_created_at', table_name='cc_incidents')
    op.drop_index('ix_cc_deployments_arrived_at', table_name='cc_deployments')
    op.create_index('ix_rms_involvements_staff_id', 'rms_involvements', ['staff_id'])
    op.create_index('ix_cc_deployments_staff_arrived', 'cc_deployments', ['staff_id', 'arrived_at'])
