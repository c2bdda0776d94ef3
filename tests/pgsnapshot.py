"""A PostgreSQL schema's rows, kept aside and put back: how the tests reuse one migrated (or
filled) schema for many tests instead of building a fresh one for each."""

from __future__ import annotations

import sqlalchemy as sa

from models import every_table


def schema_url(postgres_url: str, schema: str) -> str:
    """A URL whose connections use `schema`, and carry it as their application_name so that
    restoring the schema can end any a test left open."""
    sep = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


def _shape(conn: sa.Connection, schema: str) -> tuple:
    """Tables, columns, sequences and the migration revision: what a restore can't put back."""
    columns = conn.execute(
        sa.text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = :s ORDER BY 1, 2"
        ),
        {"s": schema},
    ).all()
    sequences = conn.execute(
        sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = :s ORDER BY 1"),
        {"s": schema},
    ).scalars()
    revision = conn.execute(sa.text(f'SELECT version_num FROM "{schema}".alembic_version'))
    return tuple(map(tuple, columns)), tuple(sequences), tuple(revision.scalars())


class Snapshot:
    """The rows of every table of `schema` and its sequences' values, copied into a schema of
    their own (`<schema>_snapshot`) now."""

    def __init__(self, admin: sa.Engine, schema: str) -> None:
        self.admin = admin
        self.copy = f"{schema}_snapshot"
        with admin.begin() as conn:
            stored = set(
                conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                    {"s": schema},
                ).scalars()
            )
            # Referred-to tables before the tables that refer to them (foreign keys).
            ordered = [t.name for t in every_table().sorted_tables if t.name in stored]
            self.tables = ordered + sorted(stored - set(ordered))
            self.sequences = conn.execute(
                sa.text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = :s"),
                {"s": schema},
            ).all()
            self.shape = _shape(conn, schema)
            conn.execute(sa.text(f'CREATE SCHEMA "{self.copy}"'))
            for table in self.tables:
                conn.execute(
                    sa.text(f'CREATE TABLE "{self.copy}"."{table}" AS TABLE "{schema}"."{table}"')
                )

    def restore(self, schema: str) -> bool:
        """Give `schema` (this one, or another of the same shape) exactly the kept rows and
        sequence values, ending connections left open on it first. False, changing nothing,
        when its tables, columns or revision are no longer the kept ones."""
        with self.admin.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :a AND pid <> pg_backend_pid()"
                ),
                {"a": schema},
            )
            if _shape(conn, schema) != self.shape:
                return False
            conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
            for table in reversed(self.tables):  # referring rows first
                # DELETE, not TRUNCATE: a few rows each, and TRUNCATE makes new files for
                # every table and index (seconds, where this is milliseconds).
                conn.execute(sa.text(f'DELETE FROM "{schema}"."{table}"'))
            for table in self.tables:
                copy = f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{self.copy}"."{table}"'
                conn.execute(sa.text(copy))
            for name, last in self.sequences:
                conn.execute(
                    sa.text("SELECT setval(:q, :v, :called)"),
                    {"q": f'"{schema}"."{name}"', "v": last or 1, "called": last is not None},
                )
        return True

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.copy}" CASCADE'))
