"""Preparing a batch's rows for storage: validate, quarantine, de-duplicate, hold, chunk.

This is the Python lane, used for every batch that isn't a CSV file the polars lane
(`engine.csvlane`) takes: NDJSON files, HTTP pages, SQL chunks, and CSV files with quoted
newlines or ragged rows. Both lanes give the same result for the same rows.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.feeds import Feed, Reject, compile_validator
from integrations.base import Row, UnreadableRow

# Rows are held back until the end of the batch so that a key repeated later replaces the
# earlier row before anything is written; past this many pending rows they are written
# early, and a repeat after that is stored twice (the later values win all the same).
PENDING_LIMIT = 250_000


@dataclass
class Chunk:
    """Rows ready to upsert, and what was set aside on the way."""

    rows: list[tuple] = field(default_factory=list)  # valid, unique by key, people known
    # Rows as a binary COPY stream (from the polars lane, for PostgreSQL), instead of `rows`.
    encoded: bytes | None = None
    # Rows in a staging table attached to the writer's connection: its first and last rowid.
    staged: tuple[int, int] | None = None
    count: int = 0  # rows to upsert, in `rows`, `encoded` or `staged`
    rejects: list[tuple[Reject, str]] = field(default_factory=list)  # with the raw row as JSON
    held: list[tuple[int, str, str, str]] = field(default_factory=list)  # line, key, staff, raw
    read: int = 0  # rows read from the source
    duplicates: int = 0  # rows replaced by a later row with the same key


def _raw(columns: Sequence[str], values: Sequence[Any]) -> str:
    return json.dumps(dict(zip(columns, values, strict=False)), default=str)


def prepare(
    rows: Iterable[Row],
    spec: Feed,
    columns: Sequence[str],
    known_people: set[str] | None,
    chunk_rows: int,
) -> Iterator[Chunk]:
    """Chunks of prepared rows. The latest row for a key wins and the rows it replaces count
    as duplicates; then rows whose person is not in `known_people` are held (for feeds that
    name a person)."""
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
        part = stored[start : start + chunk_rows]
        yield Chunk(rows=part, count=len(part))
