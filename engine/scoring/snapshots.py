"""Writing indicator snapshots: only what changed becomes a new row; history is kept.

A person's row with `is_current` holds their figures at the newest evaluation. A new row
replaces it only when a figure (or who they are: team, supervisor, role group) changed, so a
day's evaluation writes the people whose windows moved rather than everyone. Rows go in with
executemany on SQLite and COPY on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.scoring.indicators import SNAPSHOT_FIELDS
from engine.sqltime import bind_datetime
from models import Snapshot, table_of

snapshots_t = table_of(Snapshot)
COLUMNS = ("staff_id", "as_of", "evaluation_id", "is_current", "criteria_version", *SNAPSHOT_FIELDS)


def current_figures(conn: sa.Connection) -> dict[str, tuple]:
    """Each person's current snapshot, as the tuple of SNAPSHOT_FIELDS."""
    columns = [snapshots_t.c[name] for name in SNAPSHOT_FIELDS]
    rows = conn.execute(
        sa.select(snapshots_t.c.staff_id, *columns).where(snapshots_t.c.is_current.is_(True))
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def snapshot_state(engine: sa.Engine) -> dict[str, tuple]:
    """Current snapshots without ids and times: what a full and an incremental evaluation at
    the same moment must agree on (tests, bench)."""
    with engine.connect() as conn:
        return current_figures(conn)


def _as_tuple(figures: dict[str, Any]) -> tuple:
    return tuple(figures[name] for name in SNAPSHOT_FIELDS)


def write_current(
    conn: sa.Connection,
    figures: dict[str, dict[str, Any]],
    as_of: datetime,
    evaluation_id: int,
    version: str,
    *,
    everyone: bool,
    again: bool = False,
) -> int:
    """Make `figures` the current snapshots, writing rows only where they changed (or for
    everyone); people no longer counted keep their last snapshot, no longer current.
    `again`: this moment was evaluated before, so its rows are replaced."""
    before = current_figures(conn)
    if everyone:
        changed = list(figures)
    else:
        changed = [s for s, f in figures.items() if before.get(s) != _as_tuple(f)]
    gone = [s for s in before if s not in figures]
    _retire(conn, [s for s in changed if s in before] + gone)
    _insert(conn, figures, changed, as_of, evaluation_id, version, current=True, replace=again)
    return len(changed)


def replace_current(
    conn: sa.Connection,
    figures: dict[str, dict[str, Any]],
    as_of: datetime,
    evaluation_id: int,
    version: str,
) -> None:
    """Make these people's `figures` current, leaving everyone else's as they are."""
    _retire(conn, list(figures))
    _insert(conn, figures, list(figures), as_of, evaluation_id, version, current=True, replace=True)


def write_past(
    conn: sa.Connection,
    figures: dict[str, dict[str, Any]],
    as_of: datetime,
    evaluation_id: int,
    version: str,
) -> int:
    """Everyone's snapshot at an earlier moment, beside (not instead of) the current ones."""
    staff = list(figures)
    _insert(conn, figures, staff, as_of, evaluation_id, version, current=False, replace=True)
    return len(figures)


def _retire(conn: sa.Connection, staff_ids: list[str]) -> None:
    if not staff_ids:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "UPDATE snapshots SET is_current = false "
                "WHERE is_current AND staff_id = ANY(:staff)"
            ),
            {"staff": staff_ids},
        )
        return
    conn.execute(
        snapshots_t.update()
        .where(snapshots_t.c.staff_id == sa.bindparam("staff"))
        .where(snapshots_t.c.is_current.is_(True))
        .values(is_current=False),
        [{"staff": s} for s in staff_ids],
    )


def _insert(conn, figures, staff_ids, as_of, evaluation_id, version, *, current, replace):
    if not staff_ids:
        return
    postgres = conn.dialect.name == "postgresql"
    if replace:  # evaluating a moment already evaluated replaces that moment's rows
        if postgres:
            conn.execute(
                sa.text("DELETE FROM snapshots WHERE as_of = :at AND staff_id = ANY(:staff)"),
                {"at": as_of, "staff": staff_ids},
            )
        else:
            conn.execute(
                snapshots_t.delete().where(
                    snapshots_t.c.staff_id == sa.bindparam("staff"),
                    snapshots_t.c.as_of == sa.bindparam("at"),
                ),
                [{"staff": s, "at": as_of} for s in staff_ids],
            )
    fixed = (as_of, evaluation_id, current, version)
    rows = [(staff, *fixed, *_as_tuple(figures[staff])) for staff in staff_ids]
    if postgres:
        cursor = conn.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY snapshots ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    # Straight to the driver: SQLAlchemy's per-value processing would cost more than the
    # insert. The moment is bound as SQLite stores it (engine.sqltime).
    stored = bind_datetime("sqlite", as_of)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO snapshots ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})",
            [(row[0], stored, *row[2:]) for row in rows],
        )
    finally:
        cursor.close()
