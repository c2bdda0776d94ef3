"""Feed files (CSV with a header row, or NDJSON) and drop folders.

A drop folder is read in place; once a file has been stored it moves to `processed/`, and a
file that could not be used moves to `failed/` with `<name>.reason.txt` beside it, so the
folder holds only what is still to do.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.feeds import InvalidValue, parse_ndjson_line
from integrations.base import Batch, FeedFormatError, Row, UnreadableRow, rows_from_records

FEED_SUFFIXES = (".csv", ".ndjson", ".jsonl")
PROCESSED = "processed"
FAILED = "failed"

# A CSV cell can hold a whole free-text note; the csv module's 128 KiB default is too small
# for some exports, and a larger limit costs nothing per row.
csv.field_size_limit(16 * 1024 * 1024)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_ndjson(path: Path) -> bool:
    return path.suffix.lower() in (".ndjson", ".jsonl")


def read_file(path: Path, *, feed: str | None, columns: Sequence[str] | None = None) -> Batch:
    """A file as one batch. CSV takes its columns from the header; NDJSON needs `columns`.

    :raise FeedFormatError: the file is empty, not UTF-8 text, or has no usable header.
    """
    path = Path(path)
    if not path.is_file():
        raise FeedFormatError(str(path), "no such file")
    if is_ndjson(path):
        if columns is None:
            raise FeedFormatError(str(path), "an NDJSON file needs its feed to be known")
        return Batch(
            name=str(path),
            feed=feed,
            columns=tuple(columns),
            rows=_ndjson_rows(path, tuple(columns)),
            content_hash=content_hash(path),
            path=str(path),
        )
    header = csv_header(path)
    return Batch(
        name=str(path),
        feed=feed,
        columns=header,
        rows=_csv_rows(path),
        content_hash=content_hash(path),
        path=str(path),
    )


def _open_text(path: Path):
    # utf-8-sig: exports from Excel and SQL Server Management Studio start with a BOM.
    return path.open("r", encoding="utf-8-sig", newline="")


def csv_header(path: Path) -> tuple[str, ...]:
    try:
        with _open_text(path) as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        raise FeedFormatError(
            str(path), "not UTF-8 text (is it a spreadsheet or archive?)"
        ) from None
    if not first.strip():
        raise FeedFormatError(str(path), "empty file: expected a CSV header row")
    header = next(csv.reader([first]))
    names = tuple(h.strip() for h in header)
    if len(names) < 2 or any(not n for n in names):
        raise FeedFormatError(str(path), f"line 1: not a CSV header row: {first.strip()[:80]!r}")
    return names


def _csv_rows(path: Path) -> Iterator[Row]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            next(reader)
            for values in reader:
                if values:
                    yield reader.line_num, values
        except UnicodeDecodeError as error:
            raise FeedFormatError(
                str(path), f"after line {reader.line_num}: not UTF-8 text ({error.reason})"
            ) from None
        except csv.Error as error:
            raise FeedFormatError(str(path), f"line {reader.line_num}: {error}") from None


def _ndjson_rows(path: Path, columns: tuple[str, ...]) -> Iterator[Row]:
    try:
        with _open_text(path) as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = parse_ndjson_line(text)
                except InvalidValue as error:
                    yield number, UnreadableRow(str(error), text.rstrip("\n"))
                    continue
                yield from rows_from_records([record], columns, first=number)
    except UnicodeDecodeError as error:
        raise FeedFormatError(str(path), f"not UTF-8 text ({error.reason})") from None


def feed_files(folder: Path) -> list[Path]:
    """The feed files waiting in a folder (not in its processed/ or failed/), by name."""
    return sorted(
        p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in FEED_SUFFIXES
    )


def move_done(path: Path, ok: bool, reason: str | None = None) -> Path:
    """Move a drop-folder file to processed/, or failed/ with a reason file; returns where."""
    path = Path(path)
    target_dir = path.parent / (PROCESSED if ok else FAILED)
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        # The same name arriving twice keeps both: the later one gets a time suffix.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = target_dir / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), target)
    if not ok:
        target.with_name(target.name + ".reason.txt").write_text((reason or "failed") + "\n")
    return target
