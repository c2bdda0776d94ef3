"""Replaying a generated force day by day: the feeds as known at a moment, and what follows.

The generator writes each record in its final state. To measure (and test) an incremental
update as it happens in a force, `known_at` writes the feeds as the force's systems knew
them at a moment (an incident open then has no closed_at yet, an investigation closed later
is still open, a sickness spell still running has no end date), and `changes_between` writes
what the systems send next: the records that appear in a period and those whose state changes
in it, re-sent whole as the feeds do.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

# feed: (column whose time makes the record appear, [(column that fills later, [columns
# cleared until then, with the value they have meanwhile])])
RULES: dict[str, tuple[str | None, list[tuple[str, dict[str, str]]]]] = {
    "units": (None, []),
    "people": ("valid_from", []),
    "cc_incidents": ("created_at", [("closed_at", {"closed_at": ""})]),
    "cc_deployments": ("arrived_at", [("cleared_at", {"cleared_at": ""})]),
    "rms_occurrences": ("reported_at", [("closed_at", {"closed_at": "", "status": "open"})]),
    "rms_involvements": ("assigned_at", [("unassigned_at", {"unassigned_at": ""})]),
    "rest_day_cancellations": ("notified_on", []),
    "absences": ("start_date", [("end_date", {"end_date": ""})]),
}


def _stamp(moment: datetime, column: str, value: str) -> str:
    """`moment` in the shape of the column's values: a date, or UTC `...Z` to the second."""
    if len(value) == 10:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _feed(path: Path) -> str:
    return next(f for f in sorted(RULES, key=len, reverse=True) if path.name.startswith(f))


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.glob("*.csv"))


def _state(row: dict[str, str], feed: str, moment: datetime) -> dict[str, str] | None:
    """The record as known at `moment`, or None if it did not exist yet."""
    appears, later = RULES[feed]
    if appears and row[appears] and row[appears] > _stamp(moment, appears, row[appears]):
        return None
    state = dict(row)
    for column, meanwhile in later:
        if state[column] and state[column] > _stamp(moment, column, state[column]):
            state.update(meanwhile)
    return state


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def known_at(source: Path, target: Path, moment: datetime) -> None:
    """Write into `target` the feeds of `source` as known at `moment`."""
    target.mkdir(parents=True, exist_ok=True)
    for path in _files(source):
        feed = _feed(path)
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = [s for row in reader if (s := _state(row, feed, moment)) is not None]
            _write(target / path.name, list(reader.fieldnames or []), rows)


def changes_between(source: Path, target: Path, start: datetime, end: datetime) -> int:
    """Write into `target` the records that appear or change in (start, end], in their state
    at `end`; returns how many rows that is."""
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in _files(source):
        feed = _feed(path)
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for row in reader:
                after = _state(row, feed, end)
                if after is not None and after != _state(row, feed, start):
                    rows.append(after)
        if rows:
            _write(target / path.name, list(reader.fieldnames or []), rows)
            total += len(rows)
    return total
