"""Set-based upserts by natural key: executemany on SQLite, COPY + one INSERT on PostgreSQL.

Both report how many rows were inserted or changed; a row equal to the stored one is left
alone (the `WHERE ... IS DISTINCT FROM` on the conflict update), so `changed` is exactly the
count of new or different records. Rows must be unique by key within one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa

from engine.ingest.rows import CopyStream, Payload, Rows, StagedRange
from models.feeds import built_on


class Upserter:
    """Writes rows (tuples in `columns` order, as `engine.ingest.feeds` validators make them)."""

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
        self._merging = False  # PostgreSQL: a COPY met a stored key, so merge from now on
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

    def store(self, payload: Payload) -> int:
        """Upsert a chunk's rows in whichever form they were prepared; returns how many were
        new or changed."""
        match payload:
            case Rows(rows):
                return self.upsert(rows)
            case CopyStream(data, count):
                return self.upsert_copy(data, count)
            case StagedRange(table, first, last):
                return self.upsert_staged(table, first, last)
        raise TypeError(f"not a payload: {type(payload).__name__}")

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert new keys, update changed ones; returns how many rows were new or changed."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            return self._postgres(rows, None)
        return self._executemany(rows)

    def upsert_copy(self, data: bytes, count: int) -> int:
        """As `upsert`, for `count` rows as one PostgreSQL binary COPY stream, in `columns`
        order with this run's id as a last column (`engine.ingest.csv_columns` encodes them)."""
        if self.dialect != "postgresql":
            raise ValueError("a binary COPY stream is for PostgreSQL; give SQLite rows")
        return self._postgres(None, (data, count)) if count else 0

    def upsert_staged(self, source: str, first: int, last: int) -> int:
        """As `upsert`, for the rows of table `source` (SQLite; columns as `columns`) with
        rowids `first` to `last`: one statement, with no values passing through Python."""
        if self.dialect != "sqlite":
            raise ValueError("staged rows are for SQLite; PostgreSQL loads by COPY")
        columns = ", ".join(self._q(c) for c in self.columns)
        cursor = self.conn.connection.driver_connection.cursor()
        try:
            # The WHERE also tells SQLite's parser that ON CONFLICT is not a join's ON.
            cursor.execute(
                f"INSERT INTO main.{self._q(self.table.name)} ({self._column_list}) "
                f"SELECT {columns}, {int(self.run_id)} FROM {source} "
                f"WHERE rowid BETWEEN ? AND ? {self._on_conflict}",
                (first, last),
            )
            return cursor.rowcount
        finally:
            cursor.close()

    def _executemany(self, rows: Iterable[Sequence[Any]]) -> int:
        placeholders = ", ".join("?" for _ in self.columns)
        # run_id is an int we made, so it is written into the statement, not bound per row.
        sql = (
            f"INSERT INTO {self._q(self.table.name)} ({self._column_list}) "
            f"VALUES ({placeholders}, {int(self.run_id)}) {self._on_conflict}"
        )
        cursor = self.conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, rows)
            return cursor.rowcount
        finally:
            cursor.close()

    # -- PostgreSQL ---------------------------------------------------------------------

    def _postgres(self, rows, copy_rows: tuple[bytes, int] | None) -> int:
        """New keys are COPYed straight into the table (about twice as fast as any merge).
        A COPY that meets a stored key fails whole and is undone to its savepoint; that
        chunk and the rest of the batch then go through a staging table and one upsert."""
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor:
            if not self._staged:
                # Datetimes arrive as UTC text without an offset
                # (engine.ingest.feeds.parse_datetime).
                cursor.execute("SET LOCAL TIME ZONE 'UTC'")
                stage = self._q(f"stage_{self.table.name}")
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                    f"(LIKE {self._q(self.table.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self._staged = True
            if not self._merging:
                try:
                    with raw.transaction():  # a savepoint: a clash undoes only this COPY
                        return self._copy_new(cursor, rows, copy_rows)
                except psycopg.errors.UniqueViolation:
                    # A batch that updates stored rows usually updates many: stop trying.
                    self._merging = True
            return self._merge(cursor, rows, copy_rows)

    def _copy_new(self, cursor, rows, copy_rows) -> int:
        target = self._q(self.table.name)
        if copy_rows is not None:
            data, count = copy_rows
            copy = f"COPY {target} ({self._column_list}) FROM STDIN (FORMAT binary)"
            with cursor.copy(copy) as c:
                c.write(data)
            return count
        run_id = int(self.run_id)
        with cursor.copy(f"COPY {target} ({self._column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, run_id))
        return len(rows)

    def _merge(self, cursor, rows, copy_rows) -> int:
        stage = self._q(f"stage_{self.table.name}")
        cursor.execute(f"TRUNCATE {stage}")
        columns = ", ".join(self._q(c) for c in self.columns)
        if copy_rows is not None:
            copy = f"COPY {stage} ({self._column_list}) FROM STDIN (FORMAT binary)"
            with cursor.copy(copy) as c:
                c.write(copy_rows[0])
        else:
            with cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {self._q(self.table.name)} ({self._column_list}) "
            f"SELECT {columns}, {int(self.run_id)} FROM {stage} {self._on_conflict}"
        )
        return cursor.rowcount


def summarize_brin(conn: sa.Connection, table: sa.Table) -> None:
    """Summarise the page ranges a load added to `table`'s BRIN indexes (PostgreSQL).

    A BRIN index skips nothing in ranges not yet summarised, and autovacuum summarises them
    only some time after a load: until then a query by run_id or time reads the whole
    table. This reads only the new pages, once. It needs to own the table: a role that may
    only write rows leaves the summarising to autovacuum (the indexes' autosummarize).
    """
    if conn.dialect.name != "postgresql":
        return
    for index in sorted(table.indexes, key=lambda index: index.name):
        if index.dialect_options["postgresql"]["using"] != "brin" or not built_on(
            index, "postgresql"
        ):
            continue
        try:
            with conn.begin_nested():
                conn.execute(
                    sa.text("SELECT brin_summarize_new_values(CAST(:index AS regclass))"),
                    {"index": index.name},
                )
        except sa.exc.DBAPIError as error:
            if not isinstance(error.orig, psycopg.errors.InsufficientPrivilege):
                raise
