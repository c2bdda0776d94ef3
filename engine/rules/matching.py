"""Which rules each snapshot and exposure meets: the engine decides, Python explains and checks.

Both sides see the same typed values (see `fields.typed`). Every rule of the subject's kind is
also evaluated in Python; a firing the engine reports that Python does not, or the reverse, is
logged as an error and returned in `disagreements` (tests fail on any).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.rules import durable
from engine.rules.conditions import explain, fields_of, holds
from engine.rules.fields import AGE_FIELD, NUMBER, fields_for, typed
from engine.rules.pack import Rule, RulePack

log = logging.getLogger(__name__)

EXPOSURE_KEYS = (
    "incident_key",
    "exposure_id",
    "ref",
    "feed",
    "category",
    "tier",
    "role",
    "points",
    "at",
)


@dataclass
class Subject:
    """One thing a rule sees: a person's snapshot, or one exposure with the person's snapshot."""

    kind: str  # snapshot | exposure
    staff_id: str
    values: dict[str, Any]  # typed values of the fields the pack tests (missing left out)
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    exposure: Mapping[str, Any] | None = None  # exposure fields as given (with `at`)
    key: str | None = None  # identifies an exposure across runs

    def record(self) -> dict[str, Any]:
        """What the rule saw, for the decision log: every known field, typed, plus ids."""
        kinds = fields_for(self.kind)
        values = {name: typed(self.raw.get(name), kinds[name]) for name in kinds}
        values = {name: value for name, value in values.items() if value is not None}
        values.update(self.values)  # age_days, and the exposure's own fields
        record: dict[str, Any] = {"kind": self.kind, "staff_id": self.staff_id, "values": values}
        if self.exposure is not None:
            record["exposure"] = {k: _plain(v) for k, v in self.exposure.items()}
        return record


@dataclass
class Firing:
    rule: Rule
    subject: Subject
    explanation: dict[str, Any]


@dataclass
class MatchResult:
    firings: list[Firing]
    disagreements: list[str]
    subjects: int


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def tested_fields(pack: RulePack, kind: str) -> dict[str, str]:
    kinds = fields_for(kind)
    names = {name for rule in pack.rules if rule.on == kind for name in fields_of(rule.when)}
    tested = {name: kinds[name] for name in sorted(names)}
    return {**tested, AGE_FIELD: NUMBER} if kind == "exposure" else tested


def typed_values(raw: Mapping[str, Any], wanted: Mapping[str, str]) -> dict[str, Any]:
    """`fields.typed` for each wanted field, inlined for numbers: this runs for every person."""
    values = {}
    for name, kind in wanted.items():
        value = raw.get(name)
        if value is None:
            continue
        if kind == NUMBER:
            kind_of = type(value)  # not isinstance: a bool is not a number here
            if (kind_of is float and math.isfinite(value)) or kind_of is int:
                values[name] = value
        else:
            value = typed(value, kind)
            if value is not None:
                values[name] = value
    return values


def snapshot_subjects(pack: RulePack, snapshots: Iterable[Mapping[str, Any]]) -> list[Subject]:
    wanted = tested_fields(pack, "snapshot")
    return [Subject("snapshot", str(s["staff_id"]), typed_values(s, wanted), s) for s in snapshots]


def as_utc(value: Any) -> datetime:
    """An exposure time (datetime or ISO text) as aware UTC; a naive one is taken as UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def exposure_key(exposure: Mapping[str, Any]) -> str:
    """Identifies an exposure across runs: scoring's incident key, else feed, ref and role."""
    for name in ("incident_key", "exposure_id"):
        if exposure.get(name) is not None:
            return f"{exposure['staff_id']}|{exposure[name]}"
    parts = (exposure.get(k) for k in ("staff_id", "feed", "ref", "role"))
    return "|".join("" if p is None else str(p) for p in parts)


def exposure_subject(
    pack: RulePack,
    exposure: Mapping[str, Any],
    snapshot: Mapping[str, Any] | None,
    as_of: datetime,
) -> Subject:
    """One exposure, with the person's snapshot fields, aged at `as_of` (in days)."""
    wanted = tested_fields(pack, "exposure")
    merged = {**(snapshot or {}), **exposure}
    age = (as_of - as_utc(exposure["at"])).total_seconds() / 86400
    merged[AGE_FIELD] = round(age, 6)
    given = {k: exposure[k] for k in EXPOSURE_KEYS if k in exposure}
    return Subject(
        "exposure",
        str(exposure["staff_id"]),
        typed_values(merged, wanted),
        merged,
        given,
        exposure_key(exposure),
    )


def match(pack: RulePack, subjects: list[Subject]) -> MatchResult:
    """Run `subjects` through the engine, then check and explain every firing in Python."""
    facts = [{"kind": s.kind, **s.values} for s in subjects]
    fired = durable.run(pack, facts)
    by_kind: dict[str, list[Rule]] = {}
    for rule in pack.rules:
        by_kind.setdefault(rule.on, []).append(rule)
    expected = {
        (rule.id, index)
        for index, subject in enumerate(subjects)
        for rule in by_kind.get(subject.kind, ())
        if holds(rule.condition, subject.values)
    }
    disagreements = []
    for rule_id, index in sorted(fired ^ expected):
        subject = subjects[index]
        engine_says = "fires" if (rule_id, index) in fired else "does not fire"
        python_says = "fires" if (rule_id, index) in expected else "does not fire"
        message = (
            f"rule {rule_id} on {subject.kind} of {subject.staff_id}: engine {engine_says}, "
            f"Python {python_says} (values {subject.values})"
        )
        # The log has ids only: the figures stay in the returned message, not in the log.
        log.error(
            "engine and explanation disagree: rule %s on %s of %s: engine %s, Python %s",
            rule_id,
            subject.kind,
            subject.staff_id,
            engine_says,
            python_says,
        )
        disagreements.append(message)
    firings = [
        Firing(
            pack.by_id[rule_id],
            subjects[index],
            explain(pack.by_id[rule_id].condition, subjects[index].values),
        )
        for rule_id, index in sorted(fired, key=lambda item: (item[1], item[0]))
    ]
    return MatchResult(firings, disagreements, len(subjects))
