"""text compares by its bytes on PostgreSQL

Every text column of the tracker's tables gets COLLATE "C": identifiers need no language's
rules, the two databases then sort alike (SQLite compares bytes), and the b-trees of keys
are kept up with memcmp instead of strcoll. The table data is not rewritten; each index on
a text column is rebuilt once, and the tables are analysed again, as a column's type change
drops its statistics. PostgreSQL refuses to change a column a view uses, so the upgrade
stops on a view of the force's own over one of these columns: drop the view, upgrade, and
make it again (the README says so too).

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


# The tracker's tables at this revision; any other table in the schema is left alone.
TABLES = (
    'absences', 'alert_events', 'alert_follow_ups', 'alerts', 'audit_checkpoints',
    'audit_head', 'cc_deployments', 'cc_incidents', 'criteria_versions', 'decisions',
    'evaluations', 'exposure_marks', 'exposures', 'held_rows', 'ingest_runs',
    'opt_out_events', 'opt_outs', 'outbox', 'people', 'quarantined_rows',
    'rest_day_cancellations', 'rms_involvements', 'rms_occurrences', 'rule_marks',
    'rule_runs', 'ruleset_versions', 'snapshots', 'source_watermarks', 'units',
)


def _text_columns(bind) -> dict[str, list[tuple[str, str]]]:
    """Each table's text columns, with their types as declared (a length kept)."""
    rows = bind.execute(
        sa.text(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
            "AND c.relname = ANY(:tables) AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.atttypid IN ('varchar'::regtype, 'text'::regtype) "
            "ORDER BY c.relname, a.attnum"
        ),
        {'tables': list(TABLES)},
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, column_type in rows:
        tables.setdefault(table, []).append((column, column_type))
    return tables


def _collate(collation: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    for table, columns in _text_columns(bind).items():
        changes = ", ".join(
            f'ALTER COLUMN "{column}" TYPE {column_type} COLLATE "{collation}"'
            for column, column_type in columns
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')
        op.execute(f'ANALYZE "{table}"')


def upgrade() -> None:
    _collate('C')


def downgrade() -> None:
    _collate('default')
