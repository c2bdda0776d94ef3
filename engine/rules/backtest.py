"""`rules backtest`: what a ruleset would have opened over stored history, writing nothing.

Every step (a day or a week) the rules see each person's snapshot as it was then (with
`--as-of` semantics: by default every step's figures come from one sweep over the stored
history, `backtest_figures`, equal to `engine.scoring.indicators.compute` at that step; a snapshot
provider can be given instead) and every exposure of the step, as if scored when it happened.
An alert "opens" on a firing unless the same person and rule opened one within the rule's
cooldown: the backtest assumes each alert is dealt with within its cooldown, so the counts are
the most the steering group should expect. Counts are per rule, per month and per unit, and
the load they make (`Load`): per 100 staff a year, per supervisor a month, per working day for
the wellbeing team, and the share of staff alerted. Nothing is written to the database.

The period is whole days, both ends included: the first step sees the exposures from the
first day's midnight (London), and a last step ends the last day when the steps don't.
The backtest replays what `evaluate` scored: `scoring_problem` says when that is nothing, and
`score_unevaluated` scores it for the backtest alone (rolled back with it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from math import ceil
from typing import Any

import sqlalchemy as sa

from engine.rules.matching import (
    as_utc,
    exposure_subject,
    match,
    snapshot_subjects,
    tested_fields,
)
from engine.rules.pack import RulePack
from engine.sqltime import LONDON
from models import table_of

STEPS = {"day": timedelta(days=1), "week": timedelta(days=7)}

SnapshotProvider = Callable[[sa.Connection, datetime], Iterable[Mapping[str, Any]]]
ExposureProvider = Callable[[sa.Connection, datetime, datetime], Iterable[Mapping[str, Any]]]


def stored_snapshots(conn: sa.Connection, as_of: datetime) -> list[dict[str, Any]]:
    """Everyone's snapshot at `as_of`, from the indicators (nothing stored is changed)."""
    from engine.scoring.indicators import compute

    return [{"staff_id": staff, **figures} for staff, figures in compute(conn, as_of).items()]


def stored_exposures(conn: sa.Connection, after: datetime, until: datetime) -> list[dict]:
    """Scored exposures with after < at <= until."""
    from models import Exposure

    table = table_of(Exposure)
    query = sa.select(table).where(table.c.at > after, table.c.at <= until)
    return [dict(row._mapping) for row in conn.execute(query)]


def scoring_problem(conn: sa.Connection) -> str | None:
    """Why the stored history can't be replayed as it stands, or None.

    A backtest replays the exposures and figures that `evaluate` stored; on a database that
    was never evaluated every rule would silently count nothing."""
    newest = conn.execute(
        sa.text("SELECT MAX(id) FROM evaluations WHERE finished_at IS NOT NULL")
    ).scalar()
    if newest is None:
        return (
            "nothing has been scored yet: this database has never been evaluated, so every "
            "rule would count 0 alerts. Run `trauma-tracker evaluate` first (after `ingest`)"
        )
    return None


def score_unevaluated(conn: sa.Connection, criteria, start: date, history_days: int) -> int:
    """Score every stored record into `exposures` inside `conn`'s transaction, for a database
    never evaluated; the caller rolls it back, so nothing is kept. Returns the exposures."""
    from engine.scoring import exposures as scoring

    horizon = opening(start) - timedelta(days=history_days)
    return scoring.rescore_all(conn, criteria, horizon=horizon, scored_at=datetime.now(UTC))


def unscored_runs(conn: sa.Connection) -> int:
    """Ingest runs stored after the newest evaluation: their records are not scored yet."""
    watermark = conn.execute(
        sa.text(
            "SELECT run_watermark FROM evaluations WHERE finished_at IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        )
    ).scalar()
    if watermark is None:
        return 0
    query = "SELECT COUNT(*) FROM ingest_runs WHERE id > :watermark"
    return conn.execute(sa.text(query), {"watermark": watermark}).scalar_one()


def percentile(values: list[int], share: float) -> int:
    """The nearest-rank percentile: the smallest value with `share` of values at or below."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(ceil(share * len(ordered)), 1) - 1]


def working_days(start: date, end: date) -> int:
    """Mondays to Fridays from `start` to `end`, both included (bank holidays not taken off)."""
    whole, rest = divmod((end - start).days + 1, 7)
    return whole * 5 + sum((start + timedelta(days=i)).weekday() < 5 for i in range(rest))


@dataclass
class Load:
    """The load the alerts of a backtest make on people: who is counted, who is told."""

    person_steps: int = 0  # the number of people counted, summed over the steps
    people: set[str] = field(default_factory=set)  # everyone counted at some step
    alerted: set[str] = field(default_factory=set)  # everyone with at least one alert
    supervisors: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    to_supervisor: Counter = field(default_factory=Counter)  # (month, supervisor) -> alerts
    to_wellbeing: int = 0
    alerts: int = 0

    def count_step(self, moment: datetime, people: Iterable[tuple[str, Any]]) -> None:
        """The people counted at a step, with their supervisor then."""
        month = _month(moment)
        supervisors = self.supervisors[month]
        for staff_id, supervisor in people:
            self.person_steps += 1
            self.people.add(staff_id)
            if supervisor:
                supervisors.add(str(supervisor))

    def count_alert(self, at: datetime, rule, subject) -> None:
        self.alerts += 1
        self.alerted.add(subject.staff_id)
        if "supervisor" in rule.notify:
            supervisor = subject.raw.get("supervisor_id")
            # No supervisor on record: the alert goes to the escalation recipient instead.
            key = str(supervisor) if supervisor else "(none)"
            self.to_supervisor[(_month(at), key)] += 1
        if "wellbeing" in rule.notify:
            self.to_wellbeing += 1

    def figures(self, start: date, end: date, steps: int) -> dict[str, Any]:
        """The load in the units a steering group reads (see README, "The load")."""
        days = (end - start).days + 1
        headcount = self.person_steps / steps if steps else 0.0
        per_person_year = self.alerts / headcount * 365.25 / days if headcount else 0.0
        months = sorted(set(self.supervisors) | {month for month, _ in self.to_supervisor})
        monthly = []
        for month in months:
            told = {s for m, s in self.to_supervisor if m == month}
            for supervisor in sorted(self.supervisors.get(month, set()) | told):
                monthly.append(self.to_supervisor.get((month, supervisor), 0))
        return {
            "people": round(headcount, 1),
            "alerts": self.alerts,
            "per_person_year": round(per_person_year, 3),
            "per_100_staff_year": round(100 * per_person_year, 1),
            "per_supervisor_month_mean": round(sum(monthly) / len(monthly), 2) if monthly else 0,
            "per_supervisor_month_p95": percentile(monthly, 0.95),
            "supervisors": len(set().union(*self.supervisors.values())) if self.supervisors else 0,
            "wellbeing_per_working_day": round(self.to_wellbeing / working_days(start, end), 2),
            "share_alerted": round(len(self.alerted) / len(self.people), 4) if self.people else 0,
        }


def _month(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%Y-%m")


@dataclass
class BacktestReport:
    ruleset: str
    start: date
    end: date
    step: str
    steps: int = 0
    firings: int = 0
    alerts: Counter = field(default_factory=Counter)  # rule -> alerts that would open
    by_month: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    by_unit: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    disagreements: list[str] = field(default_factory=list)
    load: Load = field(default_factory=Load)

    def load_figures(self) -> dict[str, Any]:
        return self.load.figures(self.start, self.end, self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "step": self.step,
            "steps": self.steps,
            "firings": self.firings,
            "rules": {
                rule: {
                    "alerts": self.alerts[rule],
                    "by_month": dict(sorted(self.by_month[rule].items())),
                    "by_unit": dict(sorted(self.by_unit[rule].items())),
                }
                for rule in sorted(self.alerts)
            },
            "load": self.load_figures(),
            "disagreements": self.disagreements,
        }


def _end_of(day: date) -> datetime:
    # In UTC: arithmetic between two London times ignores a change of clocks.
    return datetime.combine(day, time(23, 59, 59), LONDON).astimezone(UTC)


def step_times(start: date, end: date, step: str) -> list[datetime]:
    """The evaluation moments: the end (London time) of `start` and of every `step` after it
    up to `end`, and of `end` itself when the steps pass it by (the period is inclusive)."""
    times, day = [], start
    while day <= end:
        times.append(_end_of(day))
        day += STEPS[step]
    if times and day - STEPS[step] < end:
        times.append(_end_of(end))
    return times


def opening(start: date) -> datetime:
    """Just before the first day's midnight (London): the first step sees exposures after it."""
    return datetime.combine(start, time(), LONDON).astimezone(UTC) - timedelta(microseconds=1)


def backtest(
    conn: sa.Connection,
    pack: RulePack,
    start: date,
    end: date,
    *,
    step: str = "week",
    snapshots: SnapshotProvider | None = None,
    exposures: ExposureProvider = stored_exposures,
) -> BacktestReport:
    """Replay `pack` over `start`..`end`; see the module docstring for what is counted.

    Without a `snapshots` provider, the stored history's figures are worked out for every
    step in one sweep (`backtest_figures`), equal to `stored_snapshots` at each step."""
    report = BacktestReport(pack.ruleset_hash, start, end, step)
    for rule in pack.rules:
        report.alerts[rule.id] += 0  # every rule appears, even with no alerts
    if snapshots is None:
        fields = swept_fields(pack)
        if fields is not None and step_times(start, end, step):
            from engine.rules.backtest_sweep import swept_backtest

            swept_backtest(conn, pack, report, fields, exposures)
            return report
        snapshots = stored_snapshots
    last_open: dict[tuple[str, str], datetime] = {}
    has_exposure_rules = any(rule.on == "exposure" for rule in pack.rules)
    previous = None
    for moment in step_times(start, end, step):
        snaps = list(snapshots(conn, moment))
        by_staff = {str(s["staff_id"]): s for s in snaps}
        report.load.count_step(moment, ((k, s.get("supervisor_id")) for k, s in by_staff.items()))
        subjects = snapshot_subjects(pack, snaps)
        if has_exposure_rules:
            after = previous or opening(start)
            for exposure in exposures(conn, after, moment):
                at = as_utc(exposure["at"])
                person = by_staff.get(str(exposure["staff_id"]))
                subjects.append(exposure_subject(pack, exposure, person, at))
        result = match(pack, subjects)
        report.steps += 1
        report.firings += len(result.firings)
        report.disagreements += result.disagreements
        timed = [
            (as_utc(f.subject.exposure["at"]) if f.subject.exposure else moment, f)
            for f in result.firings
        ]
        for at, firing in sorted(timed, key=lambda item: (item[0], item[1].rule.id)):
            count_firing(report, last_open, at, firing.rule, firing.subject)
        previous = moment
    return report


def count_firing(report: BacktestReport, last_open: dict, at: datetime, rule, subject) -> None:
    """One firing: an alert opens unless the person's last one for the rule is within its
    cooldown."""
    key = (subject.staff_id, rule.id)
    last = last_open.get(key)
    if last is not None and at - last < rule.cooldown:
        return
    last_open[key] = at
    report.alerts[rule.id] += 1
    report.by_month[rule.id][_month(at)] += 1
    report.by_unit[rule.id][str(subject.raw.get("unit_id") or "unknown")] += 1
    report.load.count_alert(at, rule, subject)


def swept_fields(pack: RulePack) -> list[str] | None:
    """The snapshot figures the pack's rules read (snapshot rules, and exposure rules through
    the person's snapshot), or None when the sweep cannot work them all out."""
    from engine.rules.backtest_figures import supported
    from engine.scoring.indicators import SNAPSHOT_FIELDS

    wanted = set(tested_fields(pack, "snapshot"))
    wanted |= set(tested_fields(pack, "exposure")) & set(SNAPSHOT_FIELDS)
    wanted |= {"unit_id", "supervisor_id"}  # the by-unit counts and the supervisors' load
    return sorted(wanted) if supported(wanted) else None


def compare(running: BacktestReport, candidate: BacktestReport) -> dict[str, dict[str, int]]:
    """Per rule: alerts under the running version, under the candidate, and the change."""
    rules = sorted(set(running.alerts) | set(candidate.alerts))
    return {
        rule: {
            "running": running.alerts.get(rule, 0),
            "candidate": candidate.alerts.get(rule, 0),
            "change": candidate.alerts.get(rule, 0) - running.alerts.get(rule, 0),
        }
        for rule in rules
    }
