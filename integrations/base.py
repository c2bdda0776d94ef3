"""The one shape every way of reading a feed produces: batches of plain rows.

A source (a file, a drop folder, an HTTP endpoint, a SQL query) yields `Batch`es. Ingest
stores each batch in one transaction and then calls `done(ok)` so the source can finish its
side (move the file to processed/, save the watermark). Sources know nothing about
validation or storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class FeedFormatError(Exception):
    """A whole input that can't be read as a feed: nothing of it is used.

    `source` names the file or endpoint; the message says what is wrong.
    """

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class SourceError(Exception):
    """A source that could not be reached or answered wrongly (after any retries)."""


class UnreadableRow(NamedTuple):
    """A single row the source could not even split into values (e.g. a line that isn't JSON)."""

    reason: str
    raw: str | None = None  # the text as read, kept with the quarantined row


Row = tuple[int, Sequence[Any] | UnreadableRow]
"""(line or record number, values in the batch's column order) or an unreadable row."""


@dataclass
class Batch:
    """One unit of ingestion: stored whole or not at all."""

    name: str  # what messages name: a file path, a URL, `sql:<source>`
    feed: str | None  # the feed, when the source knows it (else ingest infers or fails)
    columns: tuple[str, ...]
    rows: Iterable[Row]
    content_hash: str | None = None  # same hash as an earlier batch => nothing to do
    # For pulled sources: the watermark to remember once this batch is stored.
    source_key: str | None = None
    watermark: str | None = None
    done: Callable[[bool, str | None], None] = field(default=lambda ok, reason: None)
    # A CSV file's bytes, as hashed: `rows` reads them, and so may a lane that reads a
    # whole file at once, so what is stored is exactly what was hashed.
    csv_bytes: bytes | None = field(default=None, repr=False)


def rows_from_records(
    records: Iterable[dict[str, Any]], columns: Sequence[str], first: int = 1
) -> Iterator[Row]:
    """Records (JSON objects, SQL rows as mappings) as rows in `columns` order."""
    for number, record in enumerate(records, start=first):
        if not isinstance(record, dict):
            yield number, UnreadableRow(f"not a JSON object: {type(record).__name__}")
            continue
        yield number, [record.get(c) for c in columns]
