"""One evaluation: score exposures, take indicator snapshots, run the intervention rules.

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

Given a rules folder, a current evaluation then runs the intervention rules (engine.decisions)
in the same transaction: on everyone's figures (only people whose tested figures changed are
looked at again) and on the exposures young enough for the exposure rules. The folder's rules
are used when they are valid; otherwise the last good ruleset stored, and the problems are
reported. Opted-out people have no figures and no exposures, so they get no decisions. An
evaluation of an earlier moment runs no rules: alerts are about now, and a backtest
(`rules backtest`) is the way to ask what the rules would have said then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine import indicators, scoring
from engine.criteria import Criteria
from engine.decisions import evaluate as evaluate_rules
from engine.decisions import recent_exposures
from engine.rules.active import ActiveRuleset, NoValidRuleset, load_active
from engine.rules.marks import Marks
from engine.snapshots import write_current, write_past
from engine.sqltime import read_datetime
from models import CriteriaVersion, Evaluation, OptOut, table_of

__all__ = ["EvaluationReport", "NoValidRuleset", "evaluate", "latest", "run_watermark"]

DEFAULT_HISTORY_DAYS = indicators.WINDOWS["5y"]
EVALUATION_LOCK = 0x7454_6576  # "tTev": the PostgreSQL advisory lock key for evaluations


def _now() -> datetime:
    return datetime.now(UTC)


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
    # The intervention rules: run or not (and why not), on which ruleset, with what result.
    rules_run: bool = False
    rules_skipped: str | None = None  # why the rules did not run
    ruleset: str | None = None  # the ruleset hash
    ruleset_name: str | None = None  # its durable_rules name, welfare_<hash>
    ruleset_fallback: bool = False  # the files were broken: the last good version ran
    rule_problems: list[str] = field(default_factory=list)  # FILE:LINE: message
    decisions: int = 0
    alerts_opened: int = 0
    suppressed: int = 0  # decisions that opened nothing (an open alert, a cooldown)
    people_evaluated: int = 0  # people whose tested figures changed, so were looked at
    exposures_evaluated: int = 0  # new exposures seen by the exposure rules
    rule_disagreements: list[str] = field(default_factory=list)  # engine vs explanation: a bug

    def to_json(self) -> dict[str, Any]:
        """The CONTRACT's `evaluate --json`, and more. `ruleset` is null, and `decisions` and
        `alerts_opened` 0, when no rules ran (`rules_run` false, `rules_skipped` says why)."""
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "people": self.people,
            "decisions": self.decisions,
            "alerts_opened": self.alerts_opened,
            "ruleset": self.ruleset,
            "ruleset_name": self.ruleset_name,
            "ruleset_fallback": self.ruleset_fallback,
            "rule_problems": self.rule_problems,
            "rules_run": self.rules_run,
            "rules_skipped": self.rules_skipped,
            "suppressed": self.suppressed,
            "people_evaluated": self.people_evaluated,
            "exposures_evaluated": self.exposures_evaluated,
            "rule_disagreements": self.rule_disagreements,
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
    evaluations = table_of(Evaluation)
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
    rules_dir: Path | None = None,
    marks: Marks | None = None,
) -> EvaluationReport:
    """Score and snapshot at `as_of` (default: now), then run the rules in `rules_dir` (when
    given, and the evaluation is current), all in one transaction.

    A long-running process passes the same `marks` every time (engine.rules.marks).

    :raise NoValidRuleset: the rule files are broken and no good version was ever stored;
        nothing is written.
    """
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
        newest_as_of = conn.execute(sa.select(sa.func.max(table_of(Evaluation).c.as_of))).scalar()
        newest_as_of = read_datetime(newest_as_of)
        mode = "incremental"
        if (
            full
            or previous is None
            or previous.criteria_version != criteria.version
            or horizon < read_datetime(previous.horizon)
        ):
            mode = "full"
        current = newest_as_of is None or as_of >= newest_as_of
        # Before the scoring, so that unusable rules fail fast.
        active = load_active(conn, rules_dir, started) if rules_dir and current else None
        _remember_criteria(conn, criteria, criteria_text, started)
        evaluation_id = conn.execute(
            table_of(Evaluation)
            .insert()
            .values(
                as_of=as_of,
                started_at=started,
                mode=mode,
                criteria_version=criteria.version,
                run_watermark=watermark,
                horizon=horizon,
            )
            .returning(table_of(Evaluation).c.id)
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
        report = EvaluationReport(
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
        if active is not None:
            _run_rules(conn, active, figures, report, criteria, started, marks)
        elif rules_dir is None:
            report.rules_skipped = "no rules folder given"
        else:
            report.rules_skipped = (
                "an earlier moment than the newest evaluation: rules run only on the current one"
            )
        conn.execute(
            table_of(Evaluation)
            .update()
            .where(table_of(Evaluation).c.id == evaluation_id)
            .values(
                finished_at=clock(),
                people=len(figures),
                snapshots_written=written,
                groups_rescored=groups,
            )
        )
    return report


def _run_rules(
    conn: sa.Connection,
    active: ActiveRuleset,
    figures: dict[str, dict[str, Any]],
    report: EvaluationReport,
    criteria: Criteria,
    now: datetime,
    marks: Marks | None,
) -> None:
    """The intervention rules on everyone's figures and the recent exposures, into `report`."""
    pack = active.pack
    # Nobody opted out is among the figures or the exposures (their exposures are deleted and
    # never scored again); the filter keeps that true if those ever drift apart.
    out = set(conn.execute(sa.select(table_of(OptOut).c.staff_id)).scalars())
    snapshots = [{"staff_id": staff, **f} for staff, f in figures.items()]
    exposures = [e for e in recent_exposures(conn, pack, report.as_of) if e["staff_id"] not in out]
    summary = evaluate_rules(
        conn,
        pack,
        snapshots,
        exposures,
        as_of=report.as_of,
        criteria_hash=criteria.version,
        now=now,
        marks=marks,
    )
    report.rules_run = True
    report.ruleset = pack.ruleset_hash
    report.ruleset_name = pack.name
    report.ruleset_fallback = active.fallback
    report.rule_problems = [str(p) for p in active.problems]
    report.decisions = summary.decisions
    report.alerts_opened = summary.alerts_opened
    report.suppressed = summary.suppressed
    report.people_evaluated = summary.people_evaluated
    report.exposures_evaluated = summary.exposures_evaluated
    report.rule_disagreements = list(summary.disagreements)


def _remember_criteria(conn: sa.Connection, criteria: Criteria, text: str, at: datetime):
    versions = table_of(CriteriaVersion)
    known = conn.execute(
        sa.select(versions.c.version).where(versions.c.version == criteria.version)
    ).first()
    if known is None:
        conn.execute(
            versions.insert().values(version=criteria.version, first_used_at=at, document=text)
        )
