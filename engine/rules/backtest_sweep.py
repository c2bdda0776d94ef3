"""The backtest over swept figures (`backtest_figures`): the same alerts as matching every
person's snapshot afresh at every step, with far less matching.

A snapshot rule compares a person's figures with fixed thresholds, so whether it fires
depends only on where each tested figure lies among the thresholds the pack's snapshot rules
compare it with (its "band"). A person is matched again only when one of their bands
changed since they were last matched (or when that match left a disagreement between the
engine and Python, which is reported again at every step as before); otherwise the rules
that fired for them then fire again now. Cooldowns are the backtest's own bookkeeping
(`count_firing`), so they are unaffected. Exposures are matched at their step as before.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.rules.backtest import (
    BacktestReport,
    ExposureProvider,
    count_firing,
    opening,
    step_times,
    stored_exposures,
)
from engine.rules.backtest_figures import DailyFigures
from engine.rules.conditions import Comparison, Group
from engine.rules.matching import (
    Subject,
    as_utc,
    exposure_subject,
    match,
    tested_fields,
    typed_values,
)
from engine.rules.pack import RulePack

ORDERED = ("==", "!=", "<", "<=", ">", ">=")


def _comparisons(node: Any) -> list[Comparison]:
    if isinstance(node, Comparison):
        return [node]
    assert isinstance(node, Group)
    return [leaf for item in node.items for leaf in _comparisons(item)]


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)  # not isinstance: a bool is not a number here


def band_keys(pack: RulePack, names: tuple[str, ...]) -> Callable[[dict], tuple]:
    """A function giving a person's key: per tested field, its band among the thresholds it
    is compared with (numbers compared by order), else the value itself."""
    thresholds: dict[str, set | None] = {name: set() for name in names}
    for rule in pack.rules:
        if rule.on != "snapshot":
            continue
        for leaf in _comparisons(rule.condition):
            known = thresholds.get(leaf.field)
            if known is None:
                continue
            if leaf.op in ORDERED and _is_number(leaf.value):
                known.add(leaf.value)
            else:
                thresholds[leaf.field] = None  # `in`, text or dates: the value decides
    sorted_ = {name: sorted(cs) if cs is not None else None for name, cs in thresholds.items()}

    def key(figures: dict) -> tuple:
        parts = []
        for name in names:
            value, cuts = figures.get(name), sorted_[name]
            if cuts is None or not _is_number(value):
                parts.append(("value", type(value).__name__, value))
            else:  # below/at each threshold: every comparison with it is then decided
                parts.append((bisect_left(cuts, value), bisect_right(cuts, value)))
        return tuple(parts)

    return key


def swept_backtest(
    conn: sa.Connection,
    pack: RulePack,
    report: BacktestReport,
    fields: list[str],
    exposures: ExposureProvider,
) -> None:
    """Fill `report` as `backtest` does, with the figures from one sweep over the history."""
    moments = step_times(report.start, report.end, report.step)
    wanted = tested_fields(pack, "snapshot")
    key_of = band_keys(pack, tuple(wanted))
    has_exposure_rules = any(rule.on == "exposure" for rule in pack.rules)
    first = opening(report.start)
    by_step = _exposures_by_step(conn, moments, first, exposures, has_exposure_rules)
    seen: dict[int, tuple] = {}  # person -> their key when last matched
    fired: dict[int, list[str]] = {}  # person -> rules that fired for them then
    disagreeing: dict[int, list[str]] = {}  # person -> disagreements then (re-matched)
    last_open: dict[tuple[str, str], datetime] = {}
    sweep = DailyFigures(conn, moments, fields)
    staff = sweep.staff
    for step, (moment, figures, changed) in enumerate(sweep.steps()):
        report.load.count_step(moment, ((staff[p], f["supervisor_id"]) for p, f in figures.items()))
        for person in [p for p in seen if p not in figures]:
            del seen[person]
            fired.pop(person, None)
            disagreeing.pop(person, None)
        fresh, fresh_people = [], []
        for person in changed | set(disagreeing):
            mine = figures.get(person)
            if mine is None:
                continue
            key = key_of(mine)
            if seen.get(person) != key or person in disagreeing:
                seen[person] = key
                raw = {"staff_id": sweep.staff[person], **mine}
                fresh.append(Subject("snapshot", raw["staff_id"], typed_values(raw, wanted), raw))
                fresh_people.append(person)
        subjects = list(fresh)
        for exposure in by_step[step] if has_exposure_rules else ():
            at = as_utc(exposure["at"])
            person = sweep.index.get(str(exposure["staff_id"]))
            mine = figures.get(person) if person is not None else None
            snapshot = {"staff_id": exposure["staff_id"], **mine} if mine else None
            subjects.append(exposure_subject(pack, exposure, snapshot, at))
        result = match(pack, subjects)
        person_of = {id(s): p for s, p in zip(fresh, fresh_people, strict=True)}
        for person in fresh_people:
            fired.pop(person, None)
            disagreeing.pop(person, None)
        staff_matched = {sweep.staff[p]: p for p in fresh_people}
        for message in result.disagreements:
            # Matching's wording: "rule R on snapshot of S: engine ...".
            staff = message.partition(" on snapshot of ")[2].partition(": engine ")[0]
            if staff in staff_matched:
                disagreeing.setdefault(staff_matched[staff], []).append(message)
            else:
                report.disagreements.append(message)
        timed = []
        for firing in result.firings:
            person = person_of.get(id(firing.subject))
            if person is not None:
                fired.setdefault(person, []).append(firing.rule.id)
            else:
                timed.append((as_utc(firing.subject.exposure["at"]), firing))
        report.steps += 1
        report.firings += len(timed)
        for messages in disagreeing.values():
            report.disagreements += messages
        for person, rule_ids in fired.items():
            report.firings += len(rule_ids)
            subject = Subject("snapshot", sweep.staff[person], {}, figures[person])
            for rule_id in rule_ids:
                count_firing(report, last_open, moment, pack.by_id[rule_id], subject)
        for at, firing in sorted(timed, key=lambda item: (item[0], item[1].rule.id)):
            count_firing(report, last_open, at, firing.rule, firing.subject)


def _exposures_by_step(
    conn: sa.Connection,
    moments: list[datetime],
    first: datetime,
    exposures: ExposureProvider,
    wanted: bool,
) -> list[list[dict]]:
    """Each step's exposures (after the previous step, up to this one; the first step's
    after `first`). The stored ones are read in one query for the whole range, not one a step."""
    if not wanted:
        return [[] for _ in moments]
    if exposures is not stored_exposures:
        bounds = [first, *moments]
        return [list(exposures(conn, bounds[i], bounds[i + 1])) for i in range(len(moments))]
    steps: list[list[dict]] = [[] for _ in moments]
    for exposure in stored_exposures(conn, first, moments[-1]):
        # The step whose (previous, moment] holds it: the first moment at or after it.
        steps[bisect_left(moments, as_utc(exposure["at"]))].append(exposure)
    return steps
