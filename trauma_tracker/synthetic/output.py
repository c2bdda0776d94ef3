"""Feed files as the generator writes them: one per feed and calendar year, CSV or NDJSON.

Rows arrive in chunks of tuples already in the feed's column order and are written at once
(`csv.writer.writerows`), so the per-row cost is the C writer's. The sink counts physical
lines, which is what lets a fault be recorded with its exact line.
"""

from __future__ import annotations

import csv
import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, NamedTuple

from engine.ingest.feeds import FEEDS

FORMATS = ("csv", "ndjson")


class WrittenFile(NamedTuple):
    """A finished file: what the manifest and the truncation need (and can cross processes)."""

    path: Path
    feed: str
    fmt: str
    records: int
    lines: int


class FeedFile:
    def __init__(self, path: Path, feed: str, fmt: str) -> None:
        self.path = path
        self.feed = feed
        self.fmt = fmt
        self.records = 0
        self.lines = 0  # physical lines written so far, the CSV header included
        self.handle: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        columns = FEEDS[feed].columns
        if fmt == "csv":
            self.writer = csv.writer(self.handle, lineterminator="\n")
            self.writer.writerow(columns)
            self.lines = 1
        else:
            # Each column as its JSON key and how its text becomes a JSON value.
            self.keys = [(f'"{f.name}":', f.kind) for f in FEEDS[feed].fields]

    def emit(self, rows: list[tuple]) -> None:
        if self.fmt == "csv":
            self.writer.writerows(rows)
        else:
            self.handle.write("".join(self._json(row) + "\n" for row in rows))
        self.records += len(rows)
        self.lines += len(rows)

    def _json(self, row: tuple) -> str:
        # Built from C-level string escaping: about five times faster than json.dumps of a
        # dict, which matters at millions of rows. Empty values are omitted.
        parts = []
        for (key, kind), value in zip(self.keys, row, strict=True):
            if value == "":
                continue
            if kind == "list":
                items = ",".join(map(encode_basestring, value.split("|")))
                parts.append(f"{key}[{items}]")
            elif kind == "number":
                parts.append(key + json.dumps(_number(value)))
            else:
                parts.append(key + encode_basestring(value))
        return "{" + ",".join(parts) + "}"

    def close(self) -> WrittenFile:
        self.handle.close()
        return WrittenFile(self.path, self.feed, self.fmt, self.records, self.lines)


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text  # a faulty value stays as the source had it
    return int(value) if value.is_integer() else value


class Sink:
    """Opens files on first use and keeps them open until `close`."""

    def __init__(self, out_dir: Path, fmt: str, faults=None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.out_dir = out_dir
        self.fmt = fmt
        self.faults = faults
        self.files: dict[tuple[str, int | None], FeedFile] = {}
        self.ordinals: dict[str, int] = {}  # rows handed over so far, per feed

    def name(self, feed: str, year: int | None) -> str:
        return f"{feed}.{self.fmt}" if year is None else f"{feed}_{year}.{self.fmt}"

    def write(self, feed: str, year: int | None, rows: list[tuple]) -> None:
        if not rows:
            return
        file = self.files.get((feed, year))
        if file is None:
            path = self.out_dir / self.name(feed, year)
            file = self.files[(feed, year)] = FeedFile(path, feed, self.fmt)
        base = self.ordinals.get(feed, 0)
        self.ordinals[feed] = base + len(rows)
        if self.faults is not None and self.faults.due(feed, base, len(rows)):
            rows = self.faults.apply(feed, base, rows, file.path.name, file.lines + 1)
        file.emit(rows)

    def flush(self) -> None:
        """Empty the write buffers (before forking, so that a child never writes them again)."""
        for file in self.files.values():
            file.handle.flush()

    def close(self) -> dict[str, WrittenFile]:
        """Closes every file; returns them by file name."""
        return {name: file.close() for name, file in self._by_name()}

    def _by_name(self) -> list[tuple[str, FeedFile]]:
        return sorted((f.path.name, f) for f in self.files.values())
