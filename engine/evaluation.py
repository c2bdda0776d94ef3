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

Given a rules folder, a current evaluation then runs the intervention rules
(engine.alerts.decisions)
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

from engine.alerts.decisions import decide, recent_exposures
from engine.rules.active import ActiveRuleset, NoValidRuleset, load_active
from engine.rules.marks import Marks
from engine.scoring import exposures as scoring
from engine.scoring import indicators
from engine.scoring.criteria import Criteria
from engine.scoring.snapshots import write_current, write_past
from engine.sqltime import read_datetime
from models import CriteriaVersion, Evaluation, OptOut, table_of

__all__ = ["EvaluationReport", "NoValidRuleset", "latest", "run_evaluation", "run_watermark"]

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


@dataclass(frozen=True)
class _Plan:
    """What an evaluation will do, settled before it writes anything."""

    as_of: datetime
    horizon: datetime  # exposures before it are not kept
    mode: str  # full | incremental
    current: bool  # at or after the newest evaluation: its snapshots become the current ones
    repeat: bool  # the same moment as the newest evaluation
    since_run: int | None  # incremental: the ingest runs after this one are rescored


def run_evaluation(
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
    watermark = run_watermark(engine)
    with engine.begin() as conn:
        _one_at_a_time(conn)
        plan = _plan(conn, criteria, as_of, as_of - timedelta(days=history_days), full)
        # Before the scoring, so that unusable rules fail fast.
        active = load_active(conn, rules_dir, started) if rules_dir and plan.current else None
        _remember_criteria(conn, criteria, criteria_text, started)
        evaluation_id = _start(conn, plan, criteria, watermark, started)
        groups = _rescore(conn, plan, criteria, started)
        figures = indicators.compute(conn, as_of)
        written = _write_snapshots(conn, plan, figures, evaluation_id, criteria.version)
        report = EvaluationReport(
            evaluation_id=evaluation_id,
            as_of=as_of,
            mode=plan.mode,
            current=plan.current,
            criteria_version=criteria.version,
            people=len(figures),
            snapshots_written=written,
            groups_rescored=groups,
            exposures=conn.execute(sa.text("SELECT COUNT(*) FROM exposures")).scalar_one(),
        )
        if active is not None:
            _run_rules(conn, active, figures, report, criteria, started, marks)
        elif rules_dir is None:
            report.rules_skipped = "no rules folder given"
        else:
            report.rules_skipped = (
                "an earlier moment than the newest evaluation: rules run only on the current one"
            )
        _finish(conn, report, clock())
    return report


def _one_at_a_time(conn: sa.Connection) -> None:
    """One evaluation at a time (two schedulers, or a manual run beside one): PostgreSQL's
    advisory lock, held to the end of the transaction; SQLite has a single writer anyway.
    The lock is the schema's (as the scheduler's election is): trackers in other schemas of
    one database don't wait for each other."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
            {"key": EVALUATION_LOCK},
        )


def _plan(
    conn: sa.Connection, criteria: Criteria, as_of: datetime, horizon: datetime, full: bool
) -> _Plan:
    """Full or incremental, current or past, from the evaluations before this one."""
    previous = latest(conn)
    newest_as_of = read_datetime(
        conn.execute(sa.select(sa.func.max(table_of(Evaluation).c.as_of))).scalar()
    )
    everything = (
        full
        or previous is None
        or previous.criteria_version != criteria.version
        or horizon < read_datetime(previous.horizon)
    )
    return _Plan(
        as_of=as_of,
        horizon=horizon,
        mode="full" if everything else "incremental",
        current=newest_as_of is None or as_of >= newest_as_of,
        repeat=as_of == newest_as_of,
        since_run=None if everything else previous.run_watermark,
    )


def _start(conn: sa.Connection, plan: _Plan, criteria: Criteria, watermark: int, started) -> int:
    """The evaluation's row, before its work: returns its id."""
    evaluations = table_of(Evaluation)
    return conn.execute(
        evaluations.insert()
        .values(
            as_of=plan.as_of,
            started_at=started,
            mode=plan.mode,
            criteria_version=criteria.version,
            run_watermark=watermark,
            horizon=plan.horizon,
        )
        .returning(evaluations.c.id)
    ).scalar_one()


def _rescore(conn: sa.Connection, plan: _Plan, criteria: Criteria, started: datetime) -> int:
    """Exposures rescored (all, or the groups changed since the previous evaluation's run
    watermark, then trimmed to the horizon); returns how many groups were rescored."""
    if plan.mode == "full":
        groups = scoring.rescore_all(conn, criteria, horizon=plan.horizon, scored_at=started)
        if conn.dialect.name == "postgresql":
            # Every row is new: give the planner their statistics now, not whenever
            # autovacuum gets round to it (allowed inside a transaction, and quick).
            conn.execute(sa.text("ANALYZE exposures"))
        return groups
    groups = scoring.rescore_changed(
        conn, criteria, since_run=plan.since_run, horizon=plan.horizon, scored_at=started
    )
    scoring.trim(conn, plan.horizon)
    return groups


def _write_snapshots(conn, plan: _Plan, figures, evaluation_id: int, criteria_version) -> int:
    """The figures as snapshots: the current ones (only those that changed, unless full), or
    everyone's for a past moment. Returns how many were written."""
    if not plan.current:
        return write_past(conn, figures, plan.as_of, evaluation_id, criteria_version)
    return write_current(
        conn,
        figures,
        plan.as_of,
        evaluation_id,
        criteria_version,
        everyone=plan.mode == "full",
        again=plan.repeat,
    )


def _finish(conn: sa.Connection, report: EvaluationReport, finished: datetime) -> None:
    """The evaluation's row, completed with its counts."""
    evaluations = table_of(Evaluation)
    conn.execute(
        evaluations.update()
        .where(evaluations.c.id == report.evaluation_id)
        .values(
            finished_at=finished,
            people=report.people,
            snapshots_written=report.snapshots_written,
            groups_rescored=report.groups_rescored,
        )
    )


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
    summary = decide(
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
