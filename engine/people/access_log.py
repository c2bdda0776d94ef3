"""The access log: every view of another person's record, with who looked and why.

DESIGN.md (Privacy): a view of another person's record needs a reason, and the person can see
who looked and why. The reasons are fixed (REASONS); `other` needs a note saying what it was.
A person looking at their own record writes nothing. Entries are never deleted by an opt-out:
they are the record of other people's actions, not data derived about the person.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine.sqltime import read_datetime
from models import AccessLogEntry, PersonVersion, table_of
from models.db import connected

REASONS = ("welfare_conversation", "alert_review", "audit", "other")
REASON_LABELS = {
    "welfare_conversation": "Welfare conversation",
    "alert_review": "Reviewing an alert",
    "audit": "Audit",
    "other": "Other",
}
WHAT = ("person", "alert")
NOTE_MAX = 500

log_t = table_of(AccessLogEntry)
people_t = table_of(PersonVersion)


class AccessReasonError(ValueError):
    """A missing or unknown reason, or a missing note: `field` names the one to fix."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def check_reason(reason: str | None, note: str | None) -> tuple[str, str | None]:
    """The reason and note as stored (note stripped, None when empty).

    :raise AccessReasonError: no reason, one not in REASONS, `other` without a note, or a
        note longer than NOTE_MAX characters.
    """
    if not reason:
        raise AccessReasonError("reason", f"say why you are looking: one of {', '.join(REASONS)}")
    if reason not in REASONS:
        raise AccessReasonError("reason", f"must be one of {', '.join(REASONS)}, not {reason!r}")
    note = (note or "").strip() or None
    if reason == "other" and note is None:
        raise AccessReasonError("note", "a note is required when the reason is other")
    if note is not None and len(note) > NOTE_MAX:
        raise AccessReasonError("note", f"at most {NOTE_MAX} characters")
    return reason, note


def record_view(
    conn: sa.Connection,
    viewer_id: str,
    staff_id: str,
    reason: str,
    note: str | None,
    at: datetime,
    *,
    what: str = "person",
) -> int | None:
    """Write one access-log entry in the caller's transaction; returns its id, or None for a
    person viewing their own record (nothing is logged).

    :raise AccessReasonError: see check_reason.
    """
    reason, note = check_reason(reason, note)
    if what not in WHAT:
        raise ValueError(f"what: one of {', '.join(WHAT)}, not {what!r}")
    if viewer_id == staff_id:
        return None
    insert = log_t.insert().values(
        at=at, viewer_id=viewer_id, staff_id=staff_id, reason=reason, note=note, what=what
    )
    return conn.execute(insert).inserted_primary_key[0]


# Built once, with the person as a parameter: the Me page reads its access log on every
# request, and building a statement costs more than running it.
_ENTRIES = (
    sa.select(log_t)
    .where(log_t.c.staff_id == sa.bindparam("staff", type_=log_t.c.staff_id.type))
    .order_by(log_t.c.at.desc(), log_t.c.id.desc())
)
_NAMES = (
    sa.select(people_t.c.staff_id, people_t.c.valid_from, people_t.c.display_name)
    .where(people_t.c.staff_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(people_t.c.staff_id, people_t.c.valid_from)
)


def _names(conn: sa.Connection, staff_ids: set[str], day: date) -> dict[str, str]:
    """Display names as of `day` (the newest version on or before it, else the earliest)."""
    if not staff_ids:
        return {}
    rows = conn.execute(_NAMES, {"ids": sorted(staff_ids)})
    names: dict[str, str] = {}
    for staff_id, valid_from, name in rows:
        if staff_id not in names or valid_from <= day:
            names[staff_id] = name
    return names


def access_log_for(
    bind: sa.Engine | sa.Connection, staff_id: str, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Who viewed `staff_id`'s record and why, newest first:
    `[{"at", "viewer_id", "viewer_name", "reason", "reason_label", "note", "what"}]`
    (`at` in ISO 8601 UTC). A viewer the people feed does not know is named by staff id."""
    query = _ENTRIES if limit is None else _ENTRIES.limit(limit)
    with connected(bind) as conn:
        rows = conn.execute(query, {"staff": staff_id}).all()
        names = _names(conn, {r.viewer_id for r in rows}, date.max)
    entries = []
    for row in rows:
        at = read_datetime(row.at)
        entries.append(
            {
                "at": at.isoformat().replace("+00:00", "Z"),
                "viewer_id": row.viewer_id,
                "viewer_name": names.get(row.viewer_id, row.viewer_id),
                "reason": row.reason,
                "reason_label": REASON_LABELS[row.reason],
                "note": row.note,
                "what": row.what,
            }
        )
    return entries
