"""Reading a feed with a query against a force's reporting database.

The force's query selects the feed's fields, aliased to the feed's field names exactly as
CONTRACT.md section 1 spells them (`SELECT log_no AS incident_urn, ...`); names are taken as
the database returns them, not folded. Any SQLAlchemy URL works (sqlite, postgresql+psycopg,
mssql+pyodbc, ...). `:name` in the query is a bound parameter to SQLAlchemy; write `\\:` for a
literal colon.

With a watermark column the query is wrapped as

    SELECT * FROM (<query>) AS q WHERE q.<column> > :since ORDER BY q.<column>

(no WHERE on the first pull), so each pull reads only rows changed since the last stored
one. The column name is checked as an identifier and quoted by the dialect; `since` is only
ever a bound parameter.

Results are streamed (a server-side cursor where the driver has one) in chunks; each chunk
is one `Batch`. Values come out as the feed validators take them: datetimes and dates as
ISO 8601 text (an aware datetime keeps its offset; a naive one stays naive, which the
contract reads as Europe/London time), Decimals as plain-notation text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from integrations.base import Batch, SourceError, UnreadableRow, rows_from_records
from integrations.http import secret_forms
from models.db import url_problem

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CONNECT_TIMEOUT = 10  # seconds; without it an unreachable PostgreSQL host waits minutes


def plain_value(value: Any) -> Any:
    """A database value as text or a JSON native, which the feed validators accept."""
    if isinstance(value, float) and math.isfinite(value):
        # As text, the shortest form that reads back as the same float: a REAL column (SQLite
        # gives no Decimal without a declared type) may feed a text field such as `grade`,
        # which takes JSON strings and integers only; a number field reads the text back.
        return repr(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Text, not float: a numeric(10) unit id must stay "123", not become "123.0".
        return format(value, "f")
    if isinstance(value, list | tuple):  # PostgreSQL arrays, for list fields
        return [plain_value(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)  # UUIDs, intervals and the like


class SqlSource:
    """One feed read by one query; `columns` is the feed's column tuple."""

    def __init__(
        self,
        name: str,
        url: str,
        query: str,
        feed: str,
        columns: Sequence[str],
        *,
        watermark_column: str | None = None,
        since: str | None = None,
        chunk_size: int = 10000,
    ):
        if watermark_column is not None and not _IDENTIFIER.fullmatch(watermark_column):
            raise ValueError(
                f"SQL source {name}: watermark column {watermark_column!r} is not a plain "
                "column name (letters, digits and _, not starting with a digit); alias it in "
                "the query"
            )
        if chunk_size < 1:
            raise ValueError(f"SQL source {name}: chunk_size must be at least 1, not {chunk_size}")
        problem = url_problem(url)
        if problem:  # SQLAlchemy's own error would quote the URL, password and all
            raise ValueError(f"SQL source {name}: the database URL {problem}")
        self.url = make_url(url)
        self.name = name
        # Trailing semicolons are fine on their own but not inside the wrapping subquery.
        self.query = query.strip().rstrip(";").rstrip()
        self.feed = feed
        self.columns = tuple(columns)
        self.watermark_column = watermark_column
        self.since = since or None
        self.chunk_size = chunk_size
        self.where = f"sql:{name} ({self.url.render_as_string(hide_password=True)})"

    def batches(self) -> Iterator[Batch]:
        """One batch per chunk of rows, read as the caller asks for them.

        The connection (and its transaction) stays open between batches; the engine is
        disposed when the pull ends or the caller stops early.

        :raise SourceError: when the database can't be reached or the query fails.
        """
        self._check_sqlite_file()
        engine = self._engine()
        try:
            yield from self._chunks(engine)
        finally:
            engine.dispose()

    def _check_sqlite_file(self) -> None:
        # SQLite would silently create an empty database for a mistyped path.
        database = self.url.database or ":memory:"
        if (
            self.url.get_backend_name() == "sqlite"
            and database != ":memory:"
            and not database.startswith("file:")  # a URI filename: sqlite3 decides
            and not Path(database).is_file()
        ):
            raise SourceError(f"{self.where}: no database file at {database}")

    def _engine(self) -> Engine:
        connect_args: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql" and "connect_timeout" not in self.url.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT
        try:
            return sa.create_engine(self.url, connect_args=connect_args)
        except (sa.exc.ArgumentError, ImportError) as error:  # unknown dialect or driver
            raise SourceError(self._scrub(f"{self.where}: {error}")) from None

    def _statement(self, engine: Engine) -> tuple[sa.TextClause, dict[str, Any]]:
        if self.watermark_column is None:
            return sa.text(self.query), {}
        # quote() adds quotes only where the dialect needs them (upper case on PostgreSQL,
        # reserved words), so `q.<column>` finds the column the query named.
        column = "q." + engine.dialect.identifier_preparer.quote(self.watermark_column)
        if self.since is None:
            return sa.text(f"SELECT * FROM ({self.query}) AS q ORDER BY {column}"), {}
        wrapped = f"SELECT * FROM ({self.query}) AS q WHERE {column} > :since ORDER BY {column}"
        return sa.text(wrapped), {"since": self.since}

    def _chunks(self, engine: Engine) -> Iterator[Batch]:
        statement, params = self._statement(engine)
        try:
            connection = engine.connect()
        except sa.exc.SQLAlchemyError as error:
            raise SourceError(
                self._scrub(f"{self.where}: could not connect: {_reason(error)}")
            ) from None
        with connection:
            try:
                result = connection.execution_options(
                    stream_results=True, max_row_buffer=self.chunk_size
                ).execute(statement, params)
            except sa.exc.SQLAlchemyError as error:
                raise SourceError(
                    self._scrub(f"{self.where}: the query failed: {_reason(error)}")
                ) from None
            try:
                yield from self._read(result)
            finally:
                # Closing the connection alone leaves a server-side cursor to the garbage
                # collector when the caller stops early.
                result.close()

    def _read(self, result: sa.CursorResult[Any]) -> Iterator[Batch]:
        present = set(result.keys())
        # Only the feed's columns the query returns, so ingest sees a missing required
        # column as it would in a CSV header, instead of rejecting every row.
        columns = tuple(c for c in self.columns if c in present)
        newest: Any = None
        first = 1
        while True:
            try:
                rows = result.fetchmany(self.chunk_size)
            except sa.exc.SQLAlchemyError as error:
                raise SourceError(
                    self._scrub(f"{self.where}: reading rows failed: {_reason(error)}")
                ) from None
            if not rows:
                return
            records = [dict(row._mapping) for row in rows]
            batch_rows = list(
                rows_from_records(
                    ({k: plain_value(v) for k, v in r.items()} for r in records),
                    columns,
                    first=first,
                )
            )
            if self.watermark_column is not None:
                for index, record in enumerate(records):
                    value = record.get(self.watermark_column)
                    if value is None:
                        continue
                    problem = watermark_problem(value)
                    if not problem and newest is not None and not _comparable(value, newest):
                        # SQLite lets one column hold text in one row and a number in another.
                        problem = f"the watermark {plain_value(value)!r} is not of the kind the "
                        problem += f"others are ({type(newest).__name__})"
                    if problem:
                        # A sentinel such as 9999-12-31 would stop every later pull.
                        reason = f"{self.watermark_column}: {problem}"
                        raw = repr({k: plain_value(v) for k, v in record.items()})[:10_000]
                        batch_rows[index] = (first + index, UnreadableRow(reason, raw))
                    elif newest is None or value > newest:
                        newest = value
            last = first + len(records) - 1
            yield Batch(
                name=f"sql:{self.name} rows {first}-{last}",
                feed=self.feed,
                columns=columns,
                rows=batch_rows,
                content_hash=None,
                source_key=self.name if self.watermark_column else None,
                watermark=self._watermark(newest),
            )
            first = last + 1

    def _watermark(self, newest: Any) -> str | None:
        if self.watermark_column is None:
            return None
        if newest is None:
            return self.since
        value = plain_value(newest)
        return value if isinstance(value, str) else str(value)

    def _scrub(self, message: str) -> str:
        # Drivers don't normally echo the password, but a message must never carry it, in
        # any form (as written in the URL, decoded, escaped).
        password = self.url.password
        for form in secret_forms(str(password)) if password else ():
            message = message.replace(form, "***")
        return message


EARLIEST_YEAR, LATEST_YEAR = 1900, 2100  # as the feeds' dates (engine.ingest.feeds)


def watermark_problem(value: Any) -> str | None:
    """Why a watermark column's value can't be remembered, or None. Any orderable value
    will do (a time, a date, a row version number), but not one outside the feeds' years or
    a float that is not finite: saved, it would hide every later row."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"the watermark {value!r} is not a finite number"
    moment: Any = value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None  # opaque text that orders: the query's business
    if isinstance(moment, dt.date) and not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        return (
            f"the watermark {plain_value(value)} is out of range (a time from "
            f"{EARLIEST_YEAR} to {LATEST_YEAR})"
        )
    return None


def _comparable(value: Any, other: Any) -> bool:
    try:
        value > other  # noqa: B015 (only whether it can be asked)
    except TypeError:
        return False
    return True


def _reason(error: sa.exc.SQLAlchemyError) -> str:
    """The driver's own words, without SQLAlchemy's statement dump and help link."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return " ".join(text.split())
