"""One evaluation: score exposures, take indicator snapshots, record what was done.

Incremental by default. Exposures are rescored only for the (person, incident) groups that
ingest runs since the previous evaluation touched, then trimmed to the history horizon. The
indicator pass then computes every counted person's figures at the evaluation time (cheap,
and the only safe way: figures also move with time, as windows slide, and with peers, through
the role percentile) and writes a snapshot only for people whose figures changed, or who
have none yet. A person's current snapshot therefore always equals what a full evaluation at
the same moment would write; `evaluate --full` does exactly that, and rescores everything.

A full rescore happens anyway when the criteria changed (every exposure then carries the new
version; old snapshots keep theirs), on the first evaluation, and when the evaluation time is
so early that the history horizon moves back past what is scored. An evaluation of a moment
before the newest one writes everyone's snapshot for that moment, none of them current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine import indicators, scoring
from engine.criteria import Criteria
from engine.snapshots import write_current, write_past
from engine.sqltime import read_datetime
from models import CriteriaVersion, Evaluation

DEFAULT_HISTORY_DAYS = indicators.WINDOWS["5y"]
EVALUATION_LOCK = 0x7454_6576  # "tTev": the PostgreSQL advisory lock key for evaluations


def _now() -> datetime:
    return datetime.now(UTC)


def _table(model) -> sa.Table:
    return model.__table__


@dataclass
class EvaluationReport:
    evaluation_id: int
    as_of: datetime
    mode: str  # full | incremental
    current: bool  # whether its snapshots are the people's current ones
    criteria_version: str
    people: int
    snapshots_written: int
    groups_rescored: int
    exposures: int

    def to_json(self) -> dict[str, Any]:
        """The CONTRACT's `evaluate --json`. Rules arrive in a later release: until then no
        decisions are made, no alerts open and no ruleset is loaded, and the output says so
        with 0, 0 and null rather than pretending."""
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "people": self.people,
            "decisions": 0,
            "alerts_opened": 0,
            "ruleset": None,
            "evaluation_id": self.evaluation_id,
            "mode": self.mode,
            "current": self.current,
            "criteria_version": self.criteria_version,
            "snapshots_written": self.snapshots_written,
            "groups_rescored": self.groups_rescored,
            "exposures": self.exposures,
        }


def run_watermark(engine: sa.Engine) -> int:
    """The newest ingest run whose rows are all committed.

    On PostgreSQL two ingests can commit out of id order; taking a SHARE lock on ingest_runs
    waits for every ingest transaction in flight, so no run at or below the answer can still
    appear later. SQLite has one writer at a time, so the newest visible run is enough.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE ingest_runs IN SHARE MODE"))
        newest = conn.execute(sa.text("SELECT MAX(id) FROM ingest_runs")).scalar()
    return int(newest or 0)


def latest(conn: sa.Connection) -> sa.Row | None:
    """The newest evaluation: its watermark, horizon and criteria describe the exposures."""
    evaluations = _table(Evaluation)
    return conn.execute(sa.select(evaluations).order_by(evaluations.c.id.desc()).limit(1)).first()


def evaluate(
    engine: sa.Engine,
    criteria: Criteria,
    criteria_text: str,
    *,
    as_of: datetime | None = None,
    full: bool = False,
    history_days: int = DEFAULT_HISTORY_DAYS,
    clock: Callable[[], datetime] = _now,
) -> EvaluationReport:
    """Score and snapshot at `as_of` (default: now), in one transaction."""
    if history_days < DEFAULT_HISTORY_DAYS:
        raise ValueError(f"history must cover the 5y window ({DEFAULT_HISTORY_DAYS} days)")
    started = clock()
    as_of = (as_of or started.replace(microsecond=0)).astimezone(UTC)
    horizon = as_of - timedelta(days=history_days)
    watermark = run_watermark(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One evaluation at a time (two schedulers, or a manual run beside one); SQLite
            # has a single writer anyway.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVALUATION_LOCK})
        previous = latest(conn)
        newest_as_of = conn.execute(sa.select(sa.func.max(_table(Evaluation).c.as_of))).scalar()
        newest_as_of = read_datetime(newest_as_of)
        mode = "incremental"
        if (
            full
            or previous is None
            or previous.criteria_version != criteria.version
            or horizon < read_datetime(previous.horizon)
        ):
            mode = "full"
        _remember_criteria(conn, criteria, criteria_text, started)
        evaluation_id = conn.execute(
            _table(Evaluation)
            .insert()
            .values(
                as_of=as_of,
                started_at=started,
                mode=mode,
                criteria_version=criteria.version,
                run_watermark=watermark,
                horizon=horizon,
            )
            .returning(_table(Evaluation).c.id)
        ).scalar_one()

        if mode == "full":
            groups = scoring.rescore_all(conn, criteria, horizon=horizon, scored_at=started)
            if conn.dialect.name == "postgresql":
                # Every row is new: give the planner their statistics now, not whenever
                # autovacuum gets round to it (allowed inside a transaction, and quick).
                conn.execute(sa.text("ANALYZE exposures"))
        else:
            groups = scoring.rescore_changed(
                conn,
                criteria,
                since_run=previous.run_watermark,
                horizon=horizon,
                scored_at=started,
            )
            scoring.trim(conn, horizon)

        figures = indicators.compute(conn, as_of)
        current = newest_as_of is None or as_of >= newest_as_of
        if not current:
            written = write_past(conn, figures, as_of, evaluation_id, criteria.version)
        else:
            written = write_current(
                conn,
                figures,
                as_of,
                evaluation_id,
                criteria.version,
                everyone=mode == "full",
                again=as_of == newest_as_of,
            )
        exposures = conn.execute(sa.text("SELECT COUNT(*) FROM exposures")).scalar_one()
        conn.execute(
            _table(Evaluation)
            .update()
            .where(_table(Evaluation).c.id == evaluation_id)
            .values(
                finished_at=clock(),
                people=len(figures),
                snapshots_written=written,
                groups_rescored=groups,
            )
        )
    return EvaluationReport(
        evaluation_id=evaluation_id,
        as_of=as_of,
        mode=mode,
        current=current,
        criteria_version=criteria.version,
        people=len(figures),
        snapshots_written=written,
        groups_rescored=groups,
        exposures=exposures,
    )


def _remember_criteria(conn: sa.Connection, criteria: Criteria, text: str, at: datetime):
    versions = _table(CriteriaVersion)
    known = conn.execute(
        sa.select(versions.c.version).where(versions.c.version == criteria.version)
    ).first()
    if known is None:
        conn.execute(
            versions.insert().values(version=criteria.version, first_used_at=at, document=text)
        )
