"""Feed files (CSV with a header row, or NDJSON) and drop folders.

A drop folder is read in place; once a file has been stored it moves to `processed/`, and a
file that could not be used moves to `failed/` with `<name>.reason.txt` beside it, so the
folder holds only what is still to do.

A drop folder is written by other systems, so what is in it is checked before it is read:
- only regular files are read; a symbolic link (or a pipe, a device, a folder named like a
  feed file) is not followed but refused, and moved aside to `failed/` as it is;
- names starting with `.` and names not ending in `.csv`, `.ndjson` or `.jsonl` (such as
  `x.csv.tmp`, `x.csv.partial`) are left alone: a writer writes under such a name and
  renames the file when it is complete;
- a file whose name is not valid UTF-8 is refused (rename it);
- a file's bytes are read once: they are hashed and parsed from that one copy, so what is
  stored is what was hashed, and `unchanged` tells whether the file still holds them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.ingest.feeds import InvalidValue, parse_ndjson_line
from integrations.base import Batch, FeedFormatError, Row, UnreadableRow, rows_from_records

FEED_SUFFIXES = (".csv", ".ndjson", ".jsonl")
PROCESSED = "processed"
FAILED = "failed"

# A CSV cell can hold a whole free-text note; the csv module's 128 KiB default is too small
# for some exports, and a larger limit costs nothing per row.
FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(FIELD_LIMIT)


def shown(path: Path | str) -> str:
    """A path as messages, logs and the database name it: bytes of a name that are not
    UTF-8 appear as `\\xe9`, so the text can always be printed and stored."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def name_is_text(path: Path | str) -> bool:
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_ndjson(path: Path) -> bool:
    return path.suffix.lower() in (".ndjson", ".jsonl")


@dataclass(frozen=True)
class FileState:
    """What a file held when it was read: its inode, size and hash."""

    inode: int
    size: int
    digest: str


def read_bytes(path: Path, *, follow_links: bool = True) -> tuple[bytes, FileState]:
    """The whole of a regular file. Without `follow_links`, a symbolic link is refused
    without opening what it points to.

    :raise FileNotFoundError: the file is gone.
    :raise FeedFormatError: not a regular file (or a link, not followed), or unreadable.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        if not follow_links and os.path.islink(path):
            raise FeedFormatError(shown(path), LINK_REFUSED) from None
        raise FeedFormatError(shown(path), f"can't be read ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise FeedFormatError(shown(path), NOT_REGULAR)
        data = handle.read()
        inode = os.fstat(descriptor).st_ino
    return data, FileState(inode, len(data), hashlib.sha256(data).hexdigest())


LINK_REFUSED = "a symbolic link: links are not followed (put the file itself in the folder)"
NOT_REGULAR = "not a regular file (a folder, pipe or device): not read"


def unchanged(path: Path, state: FileState) -> bool:
    """Whether `path` is still the file, with the content, that `state` describes."""
    try:
        info = os.lstat(path)
        if (info.st_ino, info.st_size) != (state.inode, state.size):
            return False
        data, now = read_bytes(path, follow_links=False)
    except (OSError, FeedFormatError):
        return False
    return now == state


def read_file(
    path: Path,
    *,
    feed: str | None,
    columns: Sequence[str] | None = None,
    follow_links: bool = True,
) -> tuple[Batch, FileState]:
    """A file as one batch, and what the file held. CSV takes its columns from the header;
    NDJSON needs `columns`.

    :raise FileNotFoundError: the file is gone.
    :raise FeedFormatError: the file is empty, not UTF-8 text, has no usable header, or is
        not a regular file; its name is not UTF-8.
    """
    path = Path(path)
    if not name_is_text(path):
        raise FeedFormatError(
            shown(path), "the file name is not valid UTF-8: rename it (letters, digits, _-.)"
        )
    data, state = read_bytes(path, follow_links=follow_links)
    name = shown(path)
    if is_ndjson(path):
        if columns is None:
            raise FeedFormatError(name, "an NDJSON file needs its feed to be known")
        batch = Batch(
            name=name,
            feed=feed,
            columns=tuple(columns),
            rows=_ndjson_rows(name, data, tuple(columns)),
            content_hash=state.digest,
        )
        return batch, state
    batch = Batch(
        name=name,
        feed=feed,
        columns=csv_header(name, data),
        rows=_csv_rows(name, data),
        content_hash=state.digest,
        csv_bytes=data,
    )
    return batch, state


def _text(data: bytes) -> io.TextIOWrapper:
    # utf-8-sig: exports from Excel and SQL Server Management Studio start with a BOM.
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def _csv_problem(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"a field larger than {FIELD_LIMIT // (1024 * 1024)} MiB (is it a CSV file?)"
    return str(error)


def csv_header(name: str, data: bytes) -> tuple[str, ...]:
    """The column names on a CSV file's first line.

    :raise FeedFormatError: empty, not UTF-8 text, or not a header row.
    """
    end = data.find(b"\n")
    try:
        first = _text(data[: len(data) if end < 0 else end + 1]).readline()
    except UnicodeDecodeError:
        raise FeedFormatError(name, "not UTF-8 text (is it a spreadsheet or archive?)") from None
    if not first.strip():
        raise FeedFormatError(name, "empty file: expected a CSV header row")
    try:
        header = next(csv.reader([first]))
    except csv.Error as error:
        raise FeedFormatError(name, f"line 1: {_csv_problem(error)}") from None
    names = tuple(h.strip() for h in header)
    if len(names) < 2 or any(not n for n in names):
        raise FeedFormatError(name, f"line 1: not a CSV header row: {first.strip()[:80]!r}")
    return names


def header_of(path: Path) -> tuple[str, ...]:
    """A CSV file's header, read from its first line only (no link followed).

    :raise FeedFormatError, OSError: as `csv_header`, or the file can't be opened.
    """
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as handle:
        return csv_header(shown(path), handle.readline())


def _csv_rows(name: str, data: bytes) -> Iterator[Row]:
    handle = _text(data)
    reader = csv.reader(handle)
    try:
        next(reader)
        for values in reader:
            if values:
                yield reader.line_num, values
    except UnicodeDecodeError as error:
        raise FeedFormatError(
            name, f"after line {reader.line_num}: not UTF-8 text ({error.reason})"
        ) from None
    except csv.Error as error:
        raise FeedFormatError(name, f"line {reader.line_num}: {_csv_problem(error)}") from None


def _ndjson_rows(name: str, data: bytes, columns: tuple[str, ...]) -> Iterator[Row]:
    try:
        for number, text in enumerate(_text(data), start=1):
            if not text.strip():
                continue
            try:
                record = parse_ndjson_line(text)
            except InvalidValue as error:
                yield number, UnreadableRow(str(error), text.rstrip("\n"))
                continue
            yield from rows_from_records([record], columns, first=number)
    except UnicodeDecodeError as error:
        raise FeedFormatError(name, f"not UTF-8 text ({error.reason})") from None


@dataclass(frozen=True)
class Refused:
    """An entry of a drop folder that is not read, and why."""

    path: Path
    reason: str


def folder_entries(folder: Path) -> tuple[list[Path], list[Refused]]:
    """The feed files waiting in a folder (not in its processed/ or failed/), by name, and
    the entries named like feed files that are not read: links, and anything else that is
    not a regular file. Names starting with `.` are left alone (a file being written)."""
    files: list[Path] = []
    refused: list[Refused] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.lower().endswith(FEED_SUFFIXES):
                continue
            path = Path(folder) / entry.name
            if entry.is_symlink():
                refused.append(Refused(path, LINK_REFUSED))
            elif not entry.is_file(follow_symlinks=False):
                refused.append(Refused(path, NOT_REGULAR))
            else:
                files.append(path)
    return sorted(files), sorted(refused, key=lambda r: r.path)


def feed_files(folder: Path) -> list[Path]:
    """The feed files waiting in a folder: regular files only (see `folder_entries`)."""
    return folder_entries(folder)[0]


def move_done(path: Path, ok: bool, reason: str | None = None) -> Path:
    """Move a drop-folder file (a link: the link itself) to processed/, or failed/ with a
    reason file; returns where.

    :raise OSError: the file or the folder it goes to can't be moved or made.
    """
    path = Path(path)
    target_dir = path.parent / (PROCESSED if ok else FAILED)
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if os.path.lexists(target):
        # The same name arriving twice keeps both: the later one gets a time suffix.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = target_dir / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(path, target)  # a link is moved as a link, never its target
    if not ok:
        target.with_name(target.name + ".reason.txt").write_text((reason or "failed") + "\n")
    return target
