"""one BRIN index per feed table on PostgreSQL

PostgreSQL 15 reads a BRIN index's metapage and range map for every row inserted, and
summarises each index in its own pass over the new pages: the run_id and time indexes of
incidents and deployments become one BRIN index each, over both columns, which a query on
either column uses. SQLite keeps a b-tree per column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:55:00
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

GROWING = {'cc_incidents': 'created_at', 'cc_deployments': 'arrived_at'}
BRIN = {'postgresql_using': 'brin', 'postgresql_with': {'autosummarize': 'on'}}


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, time in GROWING.items():
        op.drop_index(f'ix_{table}_run_id', table_name=table)
        op.drop_index(f'ix_{table}_{time}', table_name=table)
        op.create_index(f'ix_{table}_run_id_{time}', table, ['run_id', time], **BRIN)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, time in GROWING.items():
        op.drop_index(f'ix_{table}_run_id_{time}', table_name=table)
        op.create_index(f'ix_{table}_{time}', table, [time], **BRIN)
        op.create_index(f'ix_{table}_run_id', table, ['run_id'], **BRIN)
