"""`rules backtest`: what a ruleset would have opened over stored history, writing nothing.

Every step (a day or a week) the rules see each person's snapshot as it was then (with
`--as-of` semantics: by default every step's figures come from one sweep over the stored
history, `backtest_figures`, equal to `engine.indicators.compute` at that step; a snapshot
provider can be given instead) and every exposure of the step, as if scored when it happened.
An alert "opens" on a firing unless the same person and rule opened one within the rule's
cooldown: the backtest assumes each alert is dealt with within its cooldown, so the counts are
the most the steering group should expect. Counts are per rule, per month and per unit;
nothing is written to the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.rules.matching import (
    as_utc,
    exposure_subject,
    match,
    snapshot_subjects,
    tested_fields,
)
from engine.rules.pack import RulePack

LONDON = ZoneInfo("Europe/London")
STEPS = {"day": timedelta(days=1), "week": timedelta(days=7)}

SnapshotProvider = Callable[[sa.Connection, datetime], Iterable[Mapping[str, Any]]]
ExposureProvider = Callable[[sa.Connection, datetime, datetime], Iterable[Mapping[str, Any]]]


def stored_snapshots(conn: sa.Connection, as_of: datetime) -> list[dict[str, Any]]:
    """Everyone's snapshot at `as_of`, from the indicators (nothing stored is changed)."""
    from engine.indicators import compute

    return [{"staff_id": staff, **figures} for staff, figures in compute(conn, as_of).items()]


def stored_exposures(conn: sa.Connection, after: datetime, until: datetime) -> list[dict]:
    """Scored exposures with after < at <= until."""
    from models import Exposure

    table = Exposure.__table__
    query = sa.select(table).where(table.c.at > after, table.c.at <= until)
    return [dict(row._mapping) for row in conn.execute(query)]


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
            "disagreements": self.disagreements,
        }


def step_times(start: date, end: date, step: str) -> list[datetime]:
    """The end of each step's last day, London time, as the evaluation moment."""
    times, day = [], start
    while day <= end:
        # In UTC: arithmetic between two London times ignores a change of clocks.
        times.append(datetime.combine(day, time(23, 59, 59), LONDON).astimezone(UTC))
        day += STEPS[step]
    return times


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
        subjects = snapshot_subjects(pack, snaps)
        if has_exposure_rules:
            after = previous or moment - STEPS[step]
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
    report.by_month[rule.id][at.astimezone(LONDON).strftime("%Y-%m")] += 1
    report.by_unit[rule.id][str(subject.raw.get("unit_id") or "unknown")] += 1


def swept_fields(pack: RulePack) -> list[str] | None:
    """The snapshot figures the pack's rules read (snapshot rules, and exposure rules through
    the person's snapshot), or None when the sweep cannot work them all out."""
    from engine.indicators import SNAPSHOT_FIELDS
    from engine.rules.backtest_figures import supported

    wanted = set(tested_fields(pack, "snapshot"))
    wanted |= set(tested_fields(pack, "exposure")) & set(SNAPSHOT_FIELDS)
    wanted.add("unit_id")  # the by-unit counts
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
