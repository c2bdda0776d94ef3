"""Set-based upserts by natural key: executemany on SQLite, COPY + one INSERT on PostgreSQL.

Both report how many rows were inserted or changed; a row equal to the stored one is left
alone (the `WHERE ... IS DISTINCT FROM` on the conflict update), so `changed` is exactly the
count of new or different records. Rows must be unique by key within one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The format SQLAlchemy's SQLite DateTime type reads and writes (UTC, no offset), so rows
    # written here compare and load exactly like rows written through the ORM.
    if value is None:
        return None
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


class Upserter:
    """Writes rows (tuples in `columns` order) into `table`, stamping `run_id`."""

    def __init__(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        key: Sequence[str],
        run_id: int,
    ):
        self.conn = conn
        self.table = table
        self.columns = tuple(columns)
        self.key = tuple(key)
        self.run_id = run_id
        self.dialect = conn.dialect.name
        self._staged = False
        quote = conn.dialect.identifier_preparer.quote
        self._q = quote
        names = [*self.columns, "run_id"]
        self._column_list = ", ".join(quote(c) for c in names)
        value_columns = [c for c in self.columns if c not in self.key]
        target = quote(table.name)
        if value_columns:
            assignments = ", ".join(
                f"{quote(c)} = excluded.{quote(c)}" for c in names if c not in key
            )
            if self.dialect == "postgresql":
                mine = ", ".join(f"{target}.{quote(c)}" for c in value_columns)
                theirs = ", ".join(f"excluded.{quote(c)}" for c in value_columns)
                # ROW(...) so a single value column still compares as a row.
                changed = f"ROW({mine}) IS DISTINCT FROM ROW({theirs})"
            else:
                changed = " OR ".join(
                    f"{target}.{quote(c)} IS NOT excluded.{quote(c)}" for c in value_columns
                )
            self._on_conflict = (
                f"ON CONFLICT ({', '.join(quote(k) for k in self.key)}) "
                f"DO UPDATE SET {assignments} WHERE {changed}"
            )
        else:
            self._on_conflict = f"ON CONFLICT ({', '.join(quote(k) for k in self.key)}) DO NOTHING"
        self._converters = self._sqlite_converters() if self.dialect == "sqlite" else None

    def _sqlite_converters(self) -> list:
        converters = []
        for name in self.columns:
            column_type = self.table.c[name].type
            python_type = getattr(column_type, "impl", column_type)
            if isinstance(python_type, sa.DateTime):
                converters.append(_sqlite_datetime)
            elif isinstance(python_type, sa.Date):
                converters.append(_sqlite_date)
            else:
                converters.append(None)
        return converters

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert new keys, update changed ones; returns how many rows were new or changed."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            return self._upsert_postgres(rows)
        return self._upsert_executemany(rows)

    def _upsert_executemany(self, rows: Sequence[tuple[Any, ...]]) -> int:
        converters = self._converters or [None] * len(self.columns)
        conversions = [(i, f) for i, f in enumerate(converters) if f is not None]
        run_id = self.run_id
        if conversions:
            prepared = []
            for row in rows:
                values = list(row)
                for i, convert in conversions:
                    values[i] = convert(values[i])
                values.append(run_id)
                prepared.append(values)
        else:
            prepared = [(*row, run_id) for row in rows]
        placeholders = ", ".join("?" for _ in range(len(self.columns) + 1))
        sql = (
            f"INSERT INTO {self._q(self.table.name)} ({self._column_list}) "
            f"VALUES ({placeholders}) {self._on_conflict}"
        )
        cursor = self.conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, prepared)
            return cursor.rowcount
        finally:
            cursor.close()

    def _upsert_postgres(self, rows: Sequence[tuple[Any, ...]]) -> int:
        raw = self.conn.connection.driver_connection
        stage = self._q(f"stage_{self.table.name}")
        with raw.cursor() as cursor:
            if not self._staged:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                    f"(LIKE {self._q(self.table.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self._staged = True
            else:
                cursor.execute(f"TRUNCATE {stage}")
            run_id = self.run_id
            with cursor.copy(f"COPY {stage} ({self._column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row, run_id))
            cursor.execute(
                f"INSERT INTO {self._q(self.table.name)} ({self._column_list}) "
                f"SELECT {self._column_list} FROM {stage} {self._on_conflict}"
            )
            return cursor.rowcount
