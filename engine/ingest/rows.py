"""Preparing a batch's rows for storage: validate, quarantine, de-duplicate, hold, chunk.

`batch_rows` is the one way ingest gets a batch's rows; it chooses how they are prepared,
and nothing else in ingest knows which way was taken:
- a CSV file is read whole and checked column by column (`engine.ingest.csv_columns`), its rows made
  ready as PostgreSQL's binary COPY stream or as tuples for SQLite;
- a CSV file another process already prepared into a scratch SQLite file
  (`engine.ingest.prepare_ahead`) is moved in from there, if it is still what that process read;
- everything else (NDJSON files, HTTP pages, SQL chunks, CSV files the column lane
  declines) goes row by row through the Python validator, which is the reference.
Every way gives the same result for the same rows.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.ingest.feeds import Feed, Reject, compile_validator
from integrations.base import Batch, Row, UnreadableRow

if TYPE_CHECKING:
    from engine.ingest.prepare_ahead import Prepared

# Rows are held back until the end of the batch so that a key repeated later replaces the
# earlier row before anything is written; past this many pending rows they are written
# early, and a repeat after that is stored twice (the later values win all the same).
PENDING_LIMIT = 250_000


# -- what a chunk carries to the database: one type per form ------------------------------


@dataclass(frozen=True)
class Rows:
    """Rows as tuples in the feed's column order, bound by the driver."""

    rows: list[tuple]

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class CopyStream:
    """Rows as one PostgreSQL binary COPY stream, the run's id as a last column."""

    data: bytes
    count: int


@dataclass(frozen=True)
class StagedRange:
    """Rows `first` to `last` (by rowid) of a table on the writer's SQLite connection."""

    table: str
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


Payload = Rows | CopyStream | StagedRange
NOTHING = Rows([])


@dataclass
class Chunk:
    """Rows ready to upsert, and what was set aside on the way."""

    payload: Payload = NOTHING  # valid, unique by key, people known
    rejects: list[tuple[Reject, str]] = field(default_factory=list)  # with the raw row as JSON
    held: list[tuple[int, str, str, str]] = field(default_factory=list)  # line, key, staff, raw
    read: int = 0  # rows read from the source
    duplicates: int = 0  # rows replaced by a later row with the same key


Prepare = Callable[[Feed, "frozenset[str] | None", int, int], Iterator[Chunk]]
"""(feed, people known, run id, rows per chunk) -> the batch's chunks."""


@contextmanager
def batch_rows(
    conn: sa.Connection, batch: Batch, prepared: Prepared | None = None, *, fast: bool = True
) -> Iterator[Prepare]:
    """How `batch`'s rows are prepared, for use inside the transaction that stores them.
    Enter it outside that transaction (SQLite attaches a scratch file only outside one).

    `prepared` is what `engine.ingest.prepare_ahead` made of the batch's file in another process;
    it is used only if it was made from the same bytes against the same people. `fast`
    False sends CSV files row by row too (tests compare the ways).
    """
    postgres = conn.dialect.name == "postgresql"
    with _attached(conn, prepared) as staged:

        def chunks_of(spec: Feed, known, run_id: int, chunk_rows: int) -> Iterator[Chunk]:
            if staged is not None and prepared.fits(batch.content_hash, known):
                return prepared.chunks(staged, chunk_rows)
            if fast and batch.csv_bytes is not None:
                from engine.ingest.csv_columns import (
                    prepare_csv,  # polars: imported when first needed
                )

                chunks = prepare_csv(
                    batch.csv_bytes,
                    spec,
                    batch.columns,
                    known,
                    chunk_rows,
                    encode_run=run_id if postgres else None,
                )
                if chunks is not None:
                    return chunks
            return prepare(batch.rows, spec, batch.columns, known, chunk_rows)

        yield chunks_of


@contextmanager
def _attached(conn: sa.Connection, prepared: Prepared | None) -> Iterator[str | None]:
    if prepared is None:
        yield None
        return
    if conn.dialect.name != "sqlite":
        raise ValueError("files prepared ahead are for SQLite; PostgreSQL loads by COPY")
    from engine.ingest.prepare_ahead import attached

    with attached(conn, prepared) as table:
        yield table


# -- row by row ---------------------------------------------------------------------------


def _raw(columns: Sequence[str], values: Sequence[Any]) -> str:
    return json.dumps(dict(zip(columns, values, strict=False)), default=str)


def prepare(
    rows: Iterable[Row],
    spec: Feed,
    columns: Sequence[str],
    known_people: set[str] | None,
    chunk_rows: int,
) -> Iterator[Chunk]:
    """Chunks of prepared rows, row by row. The latest row for a key wins and the rows it
    replaces count as duplicates; then rows whose person is not in `known_people` are held
    (for feeds that name a person)."""
    validate = compile_validator(spec, columns)
    key_of = operator.itemgetter(*[spec.columns.index(k) for k in spec.key])
    person = spec.columns.index(spec.person_field) if spec.person_field else None
    pending: dict[Any, tuple[int, tuple, Sequence[Any]]] = {}
    report = Chunk()
    for line, values in rows:
        report.read += 1
        if values.__class__ is UnreadableRow:
            report.rejects.append((Reject(line, None, values.reason), json.dumps(values.raw)))
            continue
        result = validate(line, values)
        if result.__class__ is Reject:
            report.rejects.append((result, _raw(columns, values)))
            continue
        key = key_of(result)
        if key in pending:
            report.duplicates += 1
            del pending[key]  # re-inserted below, so the dict keeps file order
        pending[key] = (line, result, values)
        if len(pending) >= PENDING_LIMIT:
            yield from _flush(pending, report, person, columns, chunk_rows, known_people)
            report = Chunk()
    yield from _flush(pending, report, person, columns, chunk_rows, known_people)


def _flush(pending, report, person, columns, chunk_rows, known_people) -> Iterator[Chunk]:
    stored: list[tuple] = []
    for key, (line, result, values) in pending.items():
        if person is not None and result[person] not in known_people:
            row_key = json.dumps(list(key) if key.__class__ is tuple else [key])
            report.held.append((line, row_key, result[person], _raw(columns, values)))
        else:
            stored.append(result)
    pending.clear()
    yield report
    for start in range(0, len(stored), chunk_rows):
        yield Chunk(payload=Rows(stored[start : start + chunk_rows]))
