"""Which snapshots changed since they were last evaluated: only those are evaluated again.

A mark is a person's tested figures at their last evaluation under a ruleset (in the
`rule_marks` table as a fingerprint, and in memory as the values themselves), with an optional
`recheck_after`: a cooldown that held an alert back ends then, or an alert was resolved, so the
person is looked at again even with the same figures.

A long-running process (the scheduler) keeps one `Marks` and passes it to every evaluation:
telling 50,000 snapshots apart then costs a tuple comparison each, and only the marks that
ask for a recheck are read from the database. A new `Marks` (a CLI run) reads every mark
once. Evaluations by another process meanwhile are not seen by a warm `Marks`; the worst that
does is evaluate a person again, which records a suppressed decision, never a second alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from models import RuleMark, table_of

marks_t = table_of(RuleMark)
CHUNK = 500

Entry = tuple[tuple | None, str, datetime | None]  # values (None until seen), fingerprint, recheck


def fingerprint(values: tuple) -> str:
    return hashlib.blake2b(repr(values).encode(), digest_size=12).hexdigest()


class Marks:
    def __init__(self) -> None:
        self.ruleset_hash: str | None = None
        self.entries: dict[str, Entry] = {}
        self.elsewhere: set[str] = set()

    def _load(self, conn: sa.Connection, ruleset_hash: str) -> None:
        if self.ruleset_hash != ruleset_hash:
            columns = (marks_t.c.staff_id, marks_t.c.ruleset_hash, marks_t.c.fingerprint)
            rows = conn.execute(sa.select(*columns, marks_t.c.recheck_after))
            self.entries, self.elsewhere = {}, set()
            for staff, of_ruleset, print_, recheck in rows:
                if of_ruleset == ruleset_hash:
                    self.entries[staff] = (None, print_, recheck)
                else:
                    self.elsewhere.add(staff)  # a mark under another ruleset, to replace
            self.ruleset_hash = ruleset_hash
            return
        query = sa.select(marks_t.c.staff_id, marks_t.c.recheck_after).where(
            marks_t.c.ruleset_hash == ruleset_hash, marks_t.c.recheck_after.is_not(None)
        )
        for staff, recheck in conn.execute(query):
            entry = self.entries.get(staff)
            if entry is not None:
                self.entries[staff] = (entry[0], entry[1], recheck)

    def changed(
        self,
        conn: sa.Connection,
        ruleset_hash: str,
        fields: Sequence[str],
        snapshots: Iterable[Mapping[str, Any]],
        as_of: datetime,
    ) -> list[tuple[Mapping[str, Any], tuple]]:
        """The snapshots to evaluate, each with its tested values."""
        self._load(conn, ruleset_hash)
        entries = self.entries
        changed = []
        for snapshot in snapshots:
            values = tuple(map(snapshot.get, fields))
            staff = str(snapshot["staff_id"])
            entry = entries.get(staff)
            if entry is not None:
                known, print_, recheck = entry
                same = known == values if known is not None else print_ == fingerprint(values)
                if same and (recheck is None or as_of < recheck):
                    if known is None:
                        entries[staff] = (values, print_, recheck)  # warm from now on
                    continue
            changed.append((snapshot, values))
        return changed

    def record(
        self,
        conn: sa.Connection,
        evaluated: Iterable[tuple[str, tuple]],
        rechecks: Mapping[str, datetime],
    ) -> None:
        """Write the marks of what was evaluated; memory follows once the transaction commits."""
        rows, replaced, updates = [], [], {}
        for staff, values in evaluated:
            if staff in self.entries or staff in self.elsewhere:
                replaced.append(staff)  # a person has one mark
            print_ = fingerprint(values)
            recheck = rechecks.get(staff)
            updates[staff] = (values, print_, recheck)
            row = {"staff_id": staff, "fingerprint": print_, "recheck_after": recheck}
            rows.append({**row, "ruleset_hash": self.ruleset_hash})
        for start in range(0, len(replaced), CHUNK):
            chunk = replaced[start : start + CHUNK]
            conn.execute(marks_t.delete().where(marks_t.c.staff_id.in_(chunk)))
        if rows:
            conn.execute(marks_t.insert(), rows)
        self._follow(conn, updates, replaced)

    def _follow(self, conn: sa.Connection, updates: dict[str, Entry], replaced: list[str]):
        # Memory ahead of a rolled-back transaction would skip people never evaluated.
        def committed(_connection: Any) -> None:
            self.entries.update(updates)
            self.elsewhere.difference_update(replaced)
            sa.event.remove(conn, "rollback", rolled_back)

        def rolled_back(_connection: Any) -> None:
            self.ruleset_hash, self.entries, self.elsewhere = None, {}, set()  # reload next time
            sa.event.remove(conn, "commit", committed)

        sa.event.listen(conn, "commit", committed, once=True)
        sa.event.listen(conn, "rollback", rolled_back, once=True)


def recheck(conn: sa.Connection, staff_id: str, at: datetime) -> None:
    """Look at this person again from `at`, whatever their figures (an alert was resolved)."""
    conn.execute(marks_t.update().where(marks_t.c.staff_id == staff_id).values(recheck_after=at))
