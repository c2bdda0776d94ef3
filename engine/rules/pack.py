"""A rule pack: the intervention rules and routing, validated together and named by content.

`load_pack(DIR)` reads DIR/interventions/*.yaml and DIR/routing.yaml and either returns a
`RulePack` or raises `RuleFileError` listing every problem as FILE:LINE: message. A pack's
`ruleset_hash` covers what the rules do (not comments, layout, descriptions or tests), so an
edit that changes nothing keeps the running version, and any real change gets a new name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.rules.conditions import (
    Comparison,
    ConditionGroupError,
    Group,
    Node,
    parse,
    to_data,
)
from engine.rules.fields import (
    AGE_FIELD,
    NUMBER,
    fields_for,
    number_problem,
    parse_duration,
    typed,
)
from engine.rules.schema import RoutingModel, RuleModel, RuleTestModel, problems_from
from engine.yamlfile import LinedDocument, Problem, RuleFileError, load

INTERVENTIONS = "interventions"
# Recipients found in the people history: the supervisor in force, and the person (`self`,
# reached by email unless routing.yaml gives it channels).
ROLES = ("supervisor", "self")
ROUTING_FILE = "routing.yaml"
DEFAULT_MAX_AGE = "7d"
# durable_rules 2.0.28 never finishes compiling a rule whose `$or` has some 600 branches (500
# take a third of a second); an `in` list is an `$or` of its values, and `not` turns `all`
# into `$or`. No welfare rule needs more than a few dozen.
MAX_COMPARISONS = 200


def comparisons(node: Node) -> int:
    """How many comparisons the engine is given for `node`: an `in` list is one per value."""
    if isinstance(node, Comparison):
        return len(node.value) if node.op == "in" else 1
    return sum(comparisons(item) for item in node.items)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class RuleTest:
    name: str
    given: Mapping[str, Any]
    expect: str  # fire | no_fire
    line: int | None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    on: str  # snapshot | exposure
    when: Node
    notify: tuple[str, ...]
    cooldown: timedelta
    follow_up: tuple[timedelta, ...]
    max_age: timedelta | None
    definition: Mapping[str, Any]  # the canonical form: hashed, stored, and reloadable
    version: str
    file: str = ""
    line: int | None = None
    tests: tuple[RuleTest, ...] = ()
    description: str | None = None

    @property
    def condition(self) -> Node:
        """What is evaluated: `when`, and for exposure rules the age limit before it."""
        if self.on != "exposure":
            return self.when
        days = self.max_age.total_seconds() / 86400 if self.max_age else 0
        days = int(days) if days == int(days) else days
        guard = (Comparison(AGE_FIELD, ">=", 0), Comparison(AGE_FIELD, "<=", days))
        return Group("all", (*guard, self.when))

    @property
    def fields(self) -> dict[str, str]:
        known = fields_for(self.on)
        return {**known, AGE_FIELD: NUMBER} if self.on == "exposure" else known


@dataclass(frozen=True)
class Recipient:
    name: str
    channels: tuple[str, ...]
    email: str | None


@dataclass(frozen=True)
class Routing:
    recipients: Mapping[str, Recipient]
    escalate_after: timedelta | None
    escalate_to: str | None
    quiet_hours: Mapping[str, Any] | None
    digest: timedelta | None
    definition: Mapping[str, Any]
    hash: str


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    routing: Routing
    ruleset_hash: str
    source: str = ""
    by_id: Mapping[str, Rule] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """The durable_rules ruleset name: a new version never collides with a running one."""
        return f"welfare_{self.ruleset_hash}"

    def definitions(self) -> list[Mapping[str, Any]]:
        return [rule.definition for rule in self.rules]


# --- reading files ---------------------------------------------------------------------------


def rule_files(rules_dir: Path) -> list[Path]:
    folder = rules_dir / INTERVENTIONS
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def load_pack(rules_dir: Path) -> RulePack:
    """The pack in `rules_dir`, or RuleFileError naming every problem with its line."""
    problems: list[Problem] = []
    routing = None
    routing_path = rules_dir / ROUTING_FILE
    if not routing_path.is_file():
        problems.append(Problem(str(routing_path), None, "missing: routing names the recipients"))
    else:
        try:
            routing = routing_from(load(routing_path))
        except RuleFileError as error:
            problems.extend(error.problems)
    files = rule_files(rules_dir)
    if not files:
        problems.append(Problem(str(rules_dir / INTERVENTIONS), None, "no rule files (*.yaml)"))
    rules: list[Rule] = []
    for path in files:
        try:
            document = load(path)
            rules.append(rule_from(document, routing))
        except RuleFileError as error:
            problems.extend(error.problems)
    problems.extend(_duplicate_ids(rules))
    problems.extend(_unreachable(rules, routing))
    if problems or routing is None:
        raise RuleFileError(problems)
    return make_pack(rules, routing, str(rules_dir))


def make_pack(rules: list[Rule], routing: Routing, origin: str = "") -> RulePack:
    ordered = tuple(sorted(rules, key=lambda r: r.id))
    ruleset_hash = content_hash([rule.definition for rule in ordered])
    return RulePack(ordered, routing, ruleset_hash, origin, {r.id: r for r in ordered})


def pack_from_definitions(
    rules: list[Mapping[str, Any]], routing: Mapping[str, Any], origin: str = "stored"
) -> RulePack:
    """A pack rebuilt from stored canonical definitions (for replay and the last good version)."""
    routing_obj = routing_from(LinedDocument(f"{origin}:routing", dict(routing), {}))
    built = [
        rule_from(LinedDocument(f"{origin}:{d.get('id')}", dict(d), {}), routing_obj) for d in rules
    ]
    return make_pack(built, routing_obj, origin)


def _duplicate_ids(rules: list[Rule]) -> list[Problem]:
    first: dict[str, Rule] = {}
    problems = []
    for rule in rules:
        if rule.id in first:
            other = first[rule.id]
            problems.append(
                Problem(
                    rule.file,
                    rule.line,
                    f"duplicate id {rule.id!r} (also in {other.file}:{other.line})",
                )
            )
        else:
            first[rule.id] = rule
    return problems


def _unreachable(rules: list[Rule], routing: Routing | None) -> list[Problem]:
    """Rules whose alerts could reach nobody: only the supervisor, who may not be in force,
    and no escalation recipient to take the alert instead."""
    if routing is None or routing.escalate_to is not None:
        return []
    return [
        Problem(
            rule.file,
            rule.line,
            f"rule {rule.id!r} notifies only the supervisor and routing.yaml has no "
            "escalate.to: an alert for someone with no supervisor in force would reach nobody",
        )
        for rule in rules
        if set(rule.notify) <= {"supervisor"}
    ]


def routing_from(document: LinedDocument) -> Routing:
    if not isinstance(document.data, dict):
        raise RuleFileError([document.problem((), "routing is a mapping with recipients:")])
    try:
        model = RoutingModel.model_validate(document.data)
    except ValidationError as error:
        known = ["recipients", "quiet_hours", "digest", "escalate", "channels", "email"]
        raise RuleFileError(problems_from(document, error, known)) from None
    problems = []
    for name, recipient in model.recipients.items():
        if name not in ROLES and "email" in recipient.channels and not recipient.email:
            message = f"recipient {name!r} has the email channel but no email address"
            problems.append(document.problem(("recipients", name), message))
    if model.escalate and model.escalate.to not in model.recipients:
        message = (
            f"escalate.to names {model.escalate.to!r}, which is not a recipient "
            f"(recipients: {', '.join(model.recipients)})"
        )
        problems.append(document.problem(("escalate", "to"), message))
    if problems:
        raise RuleFileError(problems)
    definition = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    recipients = {
        name: Recipient(name, tuple(r.channels), r.email) for name, r in model.recipients.items()
    }
    return Routing(
        recipients=recipients,
        escalate_after=parse_duration(model.escalate.after) if model.escalate else None,
        escalate_to=model.escalate.to if model.escalate else None,
        quiet_hours=definition.get("quiet_hours"),
        digest=parse_duration(model.digest) if model.digest else None,
        definition=definition,
        hash=content_hash(definition),
    )


def rule_from(document: LinedDocument, routing: Routing | None) -> Rule:
    """One intervention file; `routing` (when valid) checks the `notify` names."""
    if not isinstance(document.data, dict):
        raise RuleFileError([document.problem((), "a rule file is a mapping with id:, when:, ...")])
    try:
        model = RuleModel.model_validate(document.data)
    except ValidationError as error:
        known = [*RuleModel.model_fields, *RuleTestModel.model_fields]
        raise RuleFileError(problems_from(document, error, known)) from None
    problems: list[Problem] = []
    if model.max_age is not None and model.on != "exposure":
        problems.append(
            document.problem(("max_age",), "max_age applies only to `on: exposure` rules")
        )
    when = None
    kind_fields = fields_for(model.on)
    try:
        when = parse(model.when, kind_fields, document.lines, ("when",))
    except ConditionGroupError as error:
        problems += [Problem(document.file, p.line, str(p)) for p in error.problems]
    if when is not None and comparisons(when) > MAX_COMPARISONS:
        message = (
            f"when: {comparisons(when)} comparisons (each value of an `in` list counts); a "
            f"rule has at most {MAX_COMPARISONS}, beyond which the engine can't compile it"
        )
        problems.append(document.problem(("when",), message))
        when = None
    if routing is not None:
        for index, name in enumerate(model.notify):
            if name not in routing.recipients and name != "self":
                known = ", ".join(routing.recipients)
                problems.append(
                    document.problem(
                        ("notify", index),
                        f"notify names {name!r}, not a recipient in routing.yaml ({known})",
                    )
                )
    max_age = model.max_age or (DEFAULT_MAX_AGE if model.on == "exposure" else None)
    test_fields = {**kind_fields, AGE_FIELD: NUMBER} if model.on == "exposure" else kind_fields
    tests = []
    for index, case in enumerate(model.tests):
        path = ("tests", index)
        for key, value in case.given.items():
            if key not in test_fields:
                message = f"tests[{index}].given: unknown field {key!r}"
                problems.append(document.problem((*path, "given", key), message))
            elif value is not None and typed(value, test_fields[key]) is None:
                kind = test_fields[key]
                number = isinstance(value, int | float) and not isinstance(value, bool)
                problem = number_problem(value) if kind == NUMBER and number else None
                shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:30]}..."
                message = (
                    f"tests[{index}].given.{key}: {shown} {problem}"
                    if problem
                    else f"tests[{index}].given.{key}: expected a {kind}, got {shown}"
                )
                problems.append(document.problem((*path, "given", key), message))
        name = case.name or f"tests[{index}]"
        tests.append(RuleTest(name, dict(case.given), case.expect, document.line_of(path)))
    if problems:
        raise RuleFileError(problems)
    assert when is not None
    definition = {
        "id": model.id,
        "title": model.title,
        "severity": model.severity,
        "on": model.on,
        "when": to_data(when),
        "notify": list(model.notify),
        "cooldown": model.cooldown,
        "follow_up": list(model.follow_up),
        "max_age": max_age,
    }
    return Rule(
        id=model.id,
        title=model.title,
        severity=model.severity,
        on=model.on,
        when=when,
        notify=tuple(model.notify),
        cooldown=parse_duration(model.cooldown),
        follow_up=tuple(parse_duration(d) for d in model.follow_up),
        max_age=parse_duration(max_age) if max_age else None,
        definition=definition,
        version=content_hash(definition, 12),
        file=document.file,
        line=document.line_of(("id",)),
        tests=tuple(tests),
        description=model.description,
    )
