"""The fast lane for CSV files: validate whole columns at once with polars.

Row-by-row validation in Python costs more per row than the database's own insert, so a
large file is read into a polars frame and every value already in its plain form (an
enum value, a code, `2024-03-01T14:05:00Z`, `2024-03-01`, `12.5`) is checked and converted
column by column. A row with anything else in it (a missing required value, an offset
datetime, a bad date, an unknown code) goes to the Python validator, which is the
reference: it gives the exact reject message, so both lanes reject and store the same.

The lane declines a file (returns None) when its physical lines don't map one to one onto
records (quoted newlines, blank lines, a lone CR), its header repeats a name or takes one
like the lane's own columns (`__...`), a value is larger than the csv module takes, or
polars can't parse it (ragged rows, invalid UTF-8); the Python lane then reads it and
reports precisely. `engine.ingest.rows.batch_rows` decides when this lane is used.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pgpq import ArrowToPostgresBinaryEncoder

from engine.ingest.feeds import FEEDS, Feed, compile_validator
from engine.ingest.field_kinds import WHITESPACE
from engine.ingest.rows import Chunk, CopyStream, Rows, StagedRange
from integrations.files import FIELD_LIMIT

LINE = "__line"


def _frame(data: bytes, header: Sequence[str]) -> pl.DataFrame | None:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # A name like the lane's own columns' (`__line`, `__text ...`) would be overwritten.
    if len(set(header)) != len(header) or any(name.startswith("__") for name in header):
        return None
    # A lone CR ends a line for the Python lane's csv reader, but not for polars.
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        frame = pl.read_csv(
            data,
            infer_schema=False,
            has_header=True,
            new_columns=list(header),
            row_index_name=LINE,
            row_index_offset=2,  # the header is line 1
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return None
    newlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if newlines != frame.height + 1:  # a record spans lines: line numbers would be wrong
        return None
    # A value the csv module would refuse: the Python lane fails the file, naming the line.
    if len(data) > FIELD_LIMIT and frame.height:
        longest = frame.select(pl.exclude(LINE).str.len_bytes().max()).max_horizontal().item()
        if longest is not None and longest > FIELD_LIMIT:
            return None
    # polars reads a blank line as a row of nulls, which the Python lane skips. Only a file
    # with such a row is searched for one: the search costs twice polars' reading.
    if frame.select(pl.all_horizontal(pl.exclude(LINE).is_null()).any()).item() and (
        b"\n\n" in data or b"\n\r\n" in data
    ):
        return None
    return frame


# Columns `_field_checks` computes once per file, where the checks and the values use them.
TEXT = "__text "  # a field's value with surrounding whitespace stripped
PARSED = "__parsed "  # a time or date field's value parsed


@dataclass
class FieldChecks:
    """How the fast lane checks and converts a file's fields: `texts`, then `parsed`, are
    added to the frame as columns; `fine` says whether a row's field may take the fast lane,
    and `values` is its stored value there."""

    texts: list[pl.Expr]
    parsed: list[pl.Expr]
    fine: list[pl.Expr]
    values: list[pl.Expr]


def _field_checks(spec: Feed, header: Sequence[str], typed: bool) -> FieldChecks:
    """Values are text as the Python validator makes them (numbers as floats), or with
    `typed`, times and dates as polars datetimes (UTC) and dates. Each field's kind says
    which of its values it converts here (`engine.ingest.field_kinds.Kind.accepts`)."""
    checks = FieldChecks([], [], [], [])
    for f in spec.fields:
        default = pl.lit(f.default, dtype=getattr(pl, f.reads.python_dtype))
        if typed:
            default = f.reads.typed(default)
        if f.name not in header:
            checks.values.append(default.alias(f.name))
            checks.fine.append(pl.lit(not f.required))
            continue
        checks.texts.append(pl.col(f.name).str.strip_chars(WHITESPACE).alias(TEXT + f.name))
        text = pl.col(TEXT + f.name)
        parsed = f.reads.parsed(text)
        if parsed is not None:
            checks.parsed.append(parsed.alias(PARSED + f.name))
            parsed = pl.col(PARSED + f.name)
        empty = text.is_null() | (text.str.len_bytes() == 0)
        ok = f.reads.accepts(text, parsed)
        value = pl.when(empty).then(default).otherwise(f.reads.column(text, parsed, typed))
        # An empty value is fine only where the field may be empty.
        checks.fine.append(
            pl.when(empty).then(pl.lit(not f.required)).otherwise(ok.fill_null(False))
        )
        checks.values.append(value.alias(f.name))
    return checks


def prepare_csv(
    data: bytes,
    spec: Feed,
    header: Sequence[str],
    known_people: set[str] | None,
    chunk_rows: int,
    encode_run: int | None,
) -> Iterator[Chunk] | None:
    """Chunks as `engine.ingest.rows.prepare` would make them for a CSV file's bytes, or None
    to decline.

    With `encode_run`, rows come in PostgreSQL's binary COPY format, with that run_id as a
    last column; otherwise as tuples.
    """
    frame = _frame(data, header)
    if frame is None:
        return None
    return _chunks(frame, spec, header, known_people, chunk_rows, encode_run)


def _chunks(frame, spec, header, known_people, chunk_rows, encode_run) -> Iterator[Chunk]:
    typed = encode_run is not None
    summary, stored = _settle(frame, spec, header, known_people, typed)
    yield summary
    if typed:
        # The table's int4, which binary COPY needs exactly.
        stored = stored.with_columns(pl.lit(encode_run, dtype=pl.Int32).alias("run_id"))
    for start in range(0, stored.height, chunk_rows):
        part = stored.slice(start, chunk_rows)
        if typed:
            yield Chunk(payload=CopyStream(_binary_copy(part), part.height))
        else:
            yield Chunk(payload=Rows(_tuples(part)))


def _binary_copy(part: pl.DataFrame) -> bytes:
    """`part` as one whole `COPY ... (FORMAT binary)` stream. The server then neither splits
    text into fields nor parses times, which was about a fifth of its work on a large load
    (bench/ingest.py)."""
    table = part.to_arrow()
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    return b"".join(
        [
            encoder.write_header(),
            *(encoder.write_batch(batch) for batch in table.to_batches()),
            encoder.finish(),
        ]
    )


def _tuples(frame: pl.DataFrame) -> list[tuple]:
    columns = [series.to_list() for series in frame.iter_columns()]
    return list(zip(*columns, strict=True))


def _settle(frame, spec, header, known_people, typed=False) -> tuple[Chunk, pl.DataFrame]:
    """What becomes of a file's rows: the summary (rows read, duplicates, rejects, held) and
    the rows to store, in `spec.columns` order, unique by key, their people known; with
    `typed`, times and dates typed (see `_field_checks`)."""
    checks = _field_checks(spec, header, typed)
    # Stripped and parsed once, for both the checks and the values.
    checked = (
        frame.with_columns(checks.texts)
        .with_columns(checks.parsed)
        .with_columns(pl.all_horizontal(checks.fine).alias("__fine"))
    )
    fast = checked.filter(pl.col("__fine")).select(LINE, *checks.values)
    slow = checked.filter(~pl.col("__fine")).select(LINE, *header)

    summary = Chunk(read=frame.height)
    validate = compile_validator(spec, header)
    rescued: list[tuple] = []
    for line, *raw in slow.iter_rows():
        raw = ["" if v is None else v for v in raw]  # polars reads an empty cell as null
        result = validate(line, raw)
        if result.__class__ is tuple:
            rescued.append((line, *result))
        else:
            summary.rejects.append((result, json.dumps(dict(zip(header, raw, strict=True)))))
    if rescued:
        # Values the Python validator made are text, and numbers floats.
        schema = {LINE: fast.schema[LINE]}
        for f in spec.fields:
            schema[f.name] = getattr(pl, f.reads.python_dtype)
        extra = pl.DataFrame(rescued, schema=schema, orient="row")
        if typed:
            extra = extra.with_columns(f.reads.typed(pl.col(f.name)) for f in spec.fields)
        fast = pl.concat([fast, extra.cast(fast.schema)]).sort(LINE)

    # The latest row for a key wins; the rows it replaces count as duplicates.
    latest = fast.filter(pl.struct(list(spec.key)).is_last_distinct())
    summary.duplicates = fast.height - latest.height
    if spec.person_field is not None:
        known = pl.col(spec.person_field).is_in(list(known_people or ()))
        waiting = latest.filter(~known)
        latest = latest.filter(known)
        if waiting.height:
            if typed:  # keys as the Python lane writes them
                waiting = waiting.with_columns(f.reads.untyped(pl.col(f.name)) for f in spec.fields)
            raw_columns = [pl.col(c).alias(f"raw {c}") for c in header]
            joined = waiting.join(frame.select(LINE, *raw_columns), on=LINE).sort(LINE)
            for row in joined.iter_rows(named=True):
                record = {c: row[f"raw {c}"] or "" for c in header}
                key = [row[k] for k in spec.key]
                summary.held.append(
                    (row[LINE], json.dumps(key), row[spec.person_field], json.dumps(record))
                )
    return summary, latest.drop(LINE)


# -- preparing a file in another process --------------------------------------------------

STAGED_TABLE = "rows"
STAGE_ROWS = 20_000  # rows bound per executemany while writing a scratch file


@dataclass
class Staged:
    """A CSV file prepared in another process: its summary, and the rows to store written
    to a SQLite file of their own (table `rows`, in order), which the writer attaches
    (`engine.ingest.prepare_ahead.attached`) and upserts from in one statement per chunk."""

    source: str  # the CSV file
    content_hash: str  # of the bytes prepared, so the writer knows they are what it hashed
    summary: Chunk
    database: str
    count: int
    known_people: frozenset[str] | None  # what `summary.held` was decided against

    def fits(self, content_hash: str | None, known_people: frozenset[str] | None) -> bool:
        """Whether this was prepared from those bytes, against those people."""
        return self.content_hash == content_hash and self.known_people == known_people

    def chunks(self, table: str, chunk_rows: int) -> Iterator[Chunk]:
        """The summary, then the rows by rowid range of `table` (this file's table, as
        attached), `chunk_rows` at a time."""
        yield self.summary
        for first in range(1, self.count + 1, chunk_rows):
            last = min(first + chunk_rows - 1, self.count)
            yield Chunk(payload=StagedRange(table, first, last))


def stage_csv(
    path: str,
    feed: str,
    header: Sequence[str],
    known_people: frozenset[str] | None,
    database: str,
) -> Staged | None:
    """Prepare `path` as `prepare_csv` would and write its rows to the SQLite file
    `database`; None if the polars lane declines the file. Runs in a worker process, so
    that checking one file and binding its values overlap with storing the one before."""
    spec = FEEDS[feed]
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    frame = _frame(data, header)
    del data
    if frame is None:
        return None
    summary, stored = _settle(frame, spec, header, known_people)
    del frame
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        # A scratch file read once: no journal, no syncing.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        columns = ", ".join(f'"{c}"' for c in spec.columns)
        connection.execute(f"CREATE TABLE {STAGED_TABLE} ({columns})")
        insert = f"INSERT INTO {STAGED_TABLE} VALUES ({', '.join('?' for _ in spec.columns)})"
        for start in range(0, stored.height, STAGE_ROWS):
            connection.executemany(insert, _tuples(stored.slice(start, STAGE_ROWS)))
        connection.execute("COMMIT")
    finally:
        connection.close()
    return Staged(path, digest, summary, database, stored.height, known_people)
