"""Opting out and back in: a welfare preference, effective at once (DESIGN.md, Privacy).

Opting out deletes the person's derived data in the same transaction that records the choice:
exposures and snapshots, and (engine.alerts.lifecycle.forget_person) their alerts with the alerts'
outbox rows, follow-ups and events, and the rule marks; the decision log keeps its entries
about them with what they saw blanked, so the chain still verifies. Scoring, and so the
rules, skip opted-out people from then on. Opting back in rescores the person from the source
records straight away and gives them a current snapshot at the newest evaluation's time. Both
are recorded in `opt_out_events` with who recorded them, when, and through which channel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from engine.alerts.lifecycle import forget_person
from engine.evaluation import latest
from engine.people.own_record import UnknownPerson, is_opted_out, require_known
from engine.scoring import exposures as scoring
from engine.scoring import indicators
from engine.scoring.criteria import Criteria
from engine.scoring.snapshots import replace_current
from engine.sqltime import read_datetime
from models import Exposure, OptOut, OptOutEvent, Snapshot, table_of

# Derived tables holding a person's data; forget_person deletes their alerts and the rest.
DERIVED_TABLES = (Exposure, Snapshot)

__all__ = ["UnknownPerson", "opt_in", "opt_out"]


def _now() -> datetime:
    return datetime.now(UTC)


def _record(conn, staff_id: str, action: str, at: datetime, actor: str, channel: str) -> None:
    conn.execute(
        table_of(OptOutEvent)
        .insert()
        .values(staff_id=staff_id, action=action, at=at, actor=actor, channel=channel)
    )


def opt_out(
    engine: sa.Engine,
    staff_id: str,
    *,
    actor: str,
    channel: str = "cli",
    clock: Callable[[], datetime] = _now,
) -> bool:
    """Record the choice and delete the person's derived data; False if already out.

    :raise UnknownPerson: no such staff id.
    """
    at = clock()
    with engine.begin() as conn:
        require_known(conn, staff_id)
        if is_opted_out(conn, staff_id):
            return False
        conn.execute(table_of(OptOut).insert().values(staff_id=staff_id, since=at, actor=actor))
        _record(conn, staff_id, "opt_out", at, actor, channel)
        for model in DERIVED_TABLES:
            table = table_of(model)
            conn.execute(table.delete().where(table.c.staff_id == staff_id))
        forget_person(conn, staff_id, at)
    return True


def opt_in(
    engine: sa.Engine,
    staff_id: str,
    criteria: Criteria,
    *,
    actor: str,
    channel: str = "cli",
    clock: Callable[[], datetime] = _now,
) -> bool:
    """Record the choice and rebuild the person's exposures and snapshot; False if not out.

    :raise UnknownPerson: no such staff id.
    """
    at = clock()
    with engine.begin() as conn:
        require_known(conn, staff_id)
        if not is_opted_out(conn, staff_id):
            return False
        conn.execute(table_of(OptOut).delete().where(table_of(OptOut).c.staff_id == staff_id))
        _record(conn, staff_id, "opt_in", at, actor, channel)
        previous = latest(conn)
        if previous is None:
            return True  # nothing scored yet: the first evaluation will include them
        # Rejoin the newest evaluation's state as if they had never left: same horizon,
        # same moment. Others' percentiles shift with them back in; the next evaluation
        # writes those.
        horizon = read_datetime(previous.horizon)
        scoring.rescore_people(conn, criteria, [staff_id], horizon=horizon, scored_at=at)
        as_of = read_datetime(previous.as_of)
        figures = indicators.compute(conn, as_of)
        if staff_id in figures:
            replace_current(
                conn, {staff_id: figures[staff_id]}, as_of, previous.id, criteria.version
            )
    return True
