"""Dirty mode: the faults real force extracts have, each recorded with its file and line.

Faults are planned before writing as (feed, row ordinal) targets, each with its random draw,
and applied as rows pass through the sink: a dirty force is the clean force with these rows
changed, a few duplicates added, and one file's last line cut off. Nothing is drawn while
applying, so the result does not depend on which process writes which feed.
"""

from __future__ import annotations

import random
from pathlib import Path

from engine.ingest.feeds import FEEDS

FAULTS_PER_KIND = 4
# Targets fall in the first part of each feed's expected rows, so that an estimate a little
# on the high side still leaves them inside the data actually written.
REACH = 0.8

PLACES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "bad_date": (
        ("cc_incidents", "created_at"),
        ("cc_deployments", "arrived_at"),
        ("rms_occurrences", "reported_at"),
        ("rms_involvements", "assigned_at"),
        ("rest_day_cancellations", "rest_day"),
        ("absences", "start_date"),
    ),
    "unknown_code": (
        ("cc_incidents", "closing_code"),
        ("cc_incidents", "opening_code"),
        ("rms_occurrences", "hocr_code"),
    ),
    "unknown_staff": (
        ("cc_deployments", "staff_id"),
        ("rms_involvements", "staff_id"),
        ("rest_day_cancellations", "staff_id"),
        ("absences", "staff_id"),
    ),
    "duplicate": tuple(
        (feed, None)
        for feed in (
            "cc_incidents",
            "cc_deployments",
            "rms_occurrences",
            "rms_involvements",
            "rest_day_cancellations",
            "absences",
        )
    ),
}
# What people type and what exports mangle: day-first dates, impossible days, free text.
BAD_DATES = ("{y}-13-45", "31/12/{y}", "{y}-02-30", "12/31/{y}", "{y}0631")
BAD_MOMENTS = ("{y}-13-45T10:15:00Z", "31/12/{y} 14:05", "{y}-02-30T09:00:00Z", "{y}-06-31 25:61")
BAD_CODES = {
    "closing_code": ("sudden death", "??", "Concern for welfare", "rtc-fatal", "999"),
    "opening_code": ("domestic", "?", "RTC - injury", "#N/A"),
    "hocr_code": ("??", "ASSAULT", "8/1a", "1/1/1", "theft"),
}
# Staff numbers from another system: the generator's own never reach 900000.
UNKNOWN_STAFF_FROM = 900_000
# The truncated file: a person-naming feed, cut inside its staff_id so the role is missing.
TRUNCATE_FEEDS = ("cc_deployments", "rms_involvements")


class FaultPlan:
    def __init__(self, rng: random.Random, expected: dict[str, int]) -> None:
        self.targets: dict[str, dict[int, tuple[str, str | None, float]]] = {}
        for kind, places in PLACES.items():
            for _ in range(FAULTS_PER_KIND):
                feed, field = rng.choice(places)
                limit = max(1, int(expected.get(feed, 0) * REACH))
                chosen = self.targets.setdefault(feed, {})
                ordinal = rng.randrange(limit)
                while ordinal in chosen:
                    ordinal += 1
                chosen[ordinal] = (kind, field, rng.random())
        self.truncate_draw = rng.random()
        self.pending = {feed: min(t) for feed, t in self.targets.items()}
        self.applied: list[dict] = []

    def due(self, feed: str, base: int, count: int) -> bool:
        first = self.pending.get(feed)
        return first is not None and first < base + count

    def apply(self, feed: str, base: int, rows: list[tuple], file: str, line: int) -> list:
        """The chunk with its faults applied; records each at its physical line."""
        targets = self.targets[feed]
        columns = FEEDS[feed].columns
        out: list[tuple] = []
        for i, row in enumerate(rows):
            target = targets.pop(base + i, None)
            if target is None:
                out.append(row)
                continue
            kind, field, draw = target
            if kind == "duplicate":
                out.append(row)  # the original, then its exact repeat
                out.append(row)
            else:
                changed = list(row)
                changed[columns.index(field)] = _value(kind, feed, field, row, draw)
                out.append(tuple(changed))
            self.applied.append(
                {"file": file, "line": line + len(out) - 1, "field": field, "kind": kind}
            )
        self.pending[feed] = min(targets) if targets else None
        return out

    def truncate(self, files: dict) -> None:
        """Cut the last line of one person-naming file inside its staff_id, as a write that
        died mid-row leaves it; that line replaces any fault recorded there."""
        candidates = [f for f in files.values() if f.feed in TRUNCATE_FEEDS and f.records >= 2]
        if not candidates:
            return
        latest = max(name.rsplit("_", 1)[-1] for name in (f.path.stem for f in candidates))
        candidates = [f for f in candidates if f.path.stem.endswith(latest)]
        candidates.sort(key=lambda f: f.path.name)
        file = candidates[int(self.truncate_draw * len(candidates))]
        _cut_last_line(file.path, file.fmt)
        self.applied = [
            a for a in self.applied if not (a["file"] == file.path.name and a["line"] == file.lines)
        ]
        self.applied.append(
            {"file": file.path.name, "line": file.lines, "field": "role", "kind": "truncated"}
        )


def _value(kind: str, feed: str, field: str, row: tuple, draw: float) -> str:
    if kind == "unknown_staff":
        return f"S{UNKNOWN_STAFF_FROM + int(draw * (1_000_000 - UNKNOWN_STAFF_FROM)):06d}"
    if kind == "unknown_code":
        choices = BAD_CODES[field]
    else:
        choices = BAD_MOMENTS if FEEDS[feed].by_name[field].kind == "datetime" else BAD_DATES
    year = str(row[FEEDS[feed].columns.index(field)])[:4]
    return choices[int(draw * len(choices))].format(y=year if year.isdigit() else "2024")


def _cut_last_line(path: Path, fmt: str) -> None:
    with open(path, "rb+") as handle:
        size = handle.seek(0, 2)
        span = min(size, 65_536)
        handle.seek(size - span)
        tail = handle.read()
        body = tail[:-1] if tail.endswith(b"\n") else tail
        start = body.rfind(b"\n") + 1
        line = body[start:]
        if fmt == "csv":
            first = line.index(b",") + 1
            second = line.index(b",", first)
            cut = first + max(1, (second - first) // 2)
        else:
            key = b'"staff_id":"'
            cut = line.index(key) + len(key) + 3
        handle.seek(size - span + start)
        handle.write(line[:cut])
        handle.truncate()
