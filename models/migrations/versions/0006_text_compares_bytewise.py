"""text compares by its bytes on PostgreSQL

Every text column of the schema gets COLLATE "C": identifiers need no language's rules, the
two databases then sort alike (SQLite compares bytes), and the b-trees of keys are kept up
with memcmp instead of strcoll. The table data is not rewritten; each index on a text column
is rebuilt once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 17:20:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _text_columns(bind) -> dict[str, list[tuple[str, str]]]:
    """Each table's text columns and their types, alembic's own table aside."""
    rows = bind.execute(
        sa.text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> 'alembic_version' "
            "AND data_type IN ('character varying', 'text') "
            "ORDER BY table_name, ordinal_position"
        )
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, []).append((column, data_type))
    return tables


def _collate(collation: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    for table, columns in _text_columns(bind).items():
        changes = ", ".join(
            f'ALTER COLUMN "{column}" TYPE {data_type} COLLATE "{collation}"'
            for column, data_type in columns
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _collate('C')


def downgrade() -> None:
    _collate('default')
