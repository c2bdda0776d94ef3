"""criteria.yaml: what is an exposure and what it scores (CONTRACT section 2).

The file is validated whole when it is loaded, by frozen pydantic models that forbid unknown
keys; every problem is reported as FILE:LINE: message. A loaded `Criteria` knows its version,
a hash of its content (not of its bytes, so a comment or a re-indent is not a new version),
and answers which category a record falls in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.ingest.feeds import FEEDS
from engine.yamlfile import LinedDocument, Problem, RuleFileError, load, parse

CRITERIA_FILE = "criteria.yaml"
# Records that can make an exposure: an incident (through its deployments) or an occurrence
# (through its involvements).
MATCH_FEEDS = ("cc_incidents", "rms_occurrences")
PERSON_FEED = {"cc_incidents": "cc_deployments", "rms_occurrences": "rms_involvements"}
KNOWN_ROLES = tuple(
    dict.fromkeys(
        FEEDS["cc_deployments"].by_name["role"].choices
        + FEEDS["rms_involvements"].by_name["role"].choices
    )
)
# `|`-joined list fields are tested for membership under a singular name.
MEMBERSHIP = {"qualifier": "qualifiers", "crime_flag": "crime_flags"}
POINTS_DECIMALS = 3  # points are rounded so that sums agree exactly whatever the order


def _matchable(feed: str) -> dict[str, str]:
    """Condition key -> column, for the fields a condition may test."""
    spec = FEEDS[feed]
    keys: dict[str, str] = {}
    for f in spec.fields:
        # Identifiers and times say nothing about what happened.
        if f.name in spec.key or f.name == "linked_incident_urn":
            continue
        if f.kind in ("datetime", "date", "number"):
            continue
        if f.kind == "list":
            singular = next(k for k, column in MEMBERSHIP.items() if column == f.name)
            keys[singular] = f.name
        else:
            keys[f.name] = f.name
    return keys


MATCHABLE = {feed: _matchable(feed) for feed in MATCH_FEEDS}


def _problem(message: str, key: str | None = None) -> PydanticCustomError:
    # `key`/`path` let the loader point at the exact line rather than the enclosing entry.
    # The message goes in as context: a template would treat braces in a quoted value as fields.
    return PydanticCustomError("criteria", "{message}", {"message": message, "key": key})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Frozen):
    """`column` equals one of `values`; with `membership`, the `|`-list holds one of them."""

    column: str
    values: tuple[str, ...]
    membership: bool = False

    def test(self, record: Mapping[str, Any]) -> bool:
        value = record.get(self.column)
        if value is None:
            return False
        if self.membership:
            return any(v in self.values for v in str(value).split("|"))
        return value in self.values


class Match(_Frozen):
    """One `match` entry: a feed and conditions that must all hold."""

    feed: Literal["cc_incidents", "rms_occurrences"]
    conditions: tuple[Condition, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "conditions" in raw:
            return raw
        feed = raw.get("feed")
        if feed is None:
            raise _problem(f"a match entry needs `feed` (one of {_feeds()})")
        if feed not in MATCHABLE:
            raise _problem(f"unknown feed {feed!r} (expected one of {_feeds()})", "feed")
        allowed = MATCHABLE[feed]
        conditions = []
        for key, value in raw.items():
            if key == "feed":
                continue
            if key not in allowed:
                raise _problem(_unknown_field(feed, key), key)
            column = allowed[key]
            values = _values(feed, key, column, value)
            conditions.append(Condition(column=column, values=values, membership=key in MEMBERSHIP))
        if not conditions:
            raise _problem(f"a match entry on {feed} needs at least one field condition")
        return {"feed": feed, "conditions": tuple(conditions)}

    def test(self, record: Mapping[str, Any]) -> bool:
        return all(c.test(record) for c in self.conditions)


def _feeds() -> str:
    return ", ".join(MATCH_FEEDS)


def _unknown_field(feed: str, key: str) -> str:
    hint = ""
    if key in MEMBERSHIP.values():
        singular = next(k for k, v in MEMBERSHIP.items() if v == key)
        hint = f"; use `{singular}` to test membership of {key}"
    elif key in FEEDS[feed].by_name:
        hint = f"; {key} can't be matched on"
    return f"unknown field {key!r} for {feed}{hint} (expected one of {', '.join(MATCHABLE[feed])})"


def _values(feed: str, key: str, column: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _problem(f"{key}: an empty list matches nothing", key)
    spec = FEEDS[feed].by_name[column]
    values = []
    for item in items:
        # YAML reads `2` (a Home Office code) as a number; `no` and `yes` as booleans.
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise _problem(f"{key}: {item!r} is not a code; quote it", key)
        text = str(item).strip()
        if spec.kind == "enum" and text not in spec.choices:
            raise _problem(f"{key}: {text!r} is not one of {', '.join(spec.choices)}", key)
        if spec.kind == "code" and not spec.reads.pattern.fullmatch(text):
            raise _problem(f"{key}: {text!r} can never match: not a valid {spec.reads.label}", key)
        if not text:
            raise _problem(f"{key}: an empty value matches nothing", key)
        values.append(text)
    return tuple(values)


class Category(_Frozen):
    id: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: Annotated[StrictStr, Field(min_length=1)]
    tier: Annotated[StrictInt, Field(ge=1)]
    match: Annotated[tuple[Match, ...], Field(min_length=1)]

    def test(self, feed: str, record: Mapping[str, Any]) -> bool:
        return any(m.feed == feed and m.test(record) for m in self.match)


# Strict: a multiplier written as "1.0" or `yes` is a mistake to report, not to convert.
# Finite and at most MAX_WEIGHT: `.inf` would score every exposure as infinity.
MAX_WEIGHT = 1000.0
Weight = Annotated[float, Field(strict=True, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]


class Criteria(_Frozen):
    """A validated criteria file. Build with `load_criteria` to get line numbers in errors."""

    tiers: Annotated[dict[StrictInt, Weight], Field(min_length=1)]
    roles: Annotated[dict[StrictStr, Weight], Field(min_length=1)]
    categories: Annotated[tuple[Category, ...], Field(min_length=1)]

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, float]) -> dict[str, float]:
        for role in roles:
            if role not in KNOWN_ROLES:
                raise _problem(
                    f"unknown role {role!r} (expected one of {', '.join(KNOWN_ROLES)})", role
                )
        return roles

    @model_validator(mode="after")
    def _consistent(self) -> Criteria:
        problems = []
        first: dict[str, int] = {}
        for index, category in enumerate(self.categories):
            if category.tier not in self.tiers:
                problems.append(
                    (
                        ("categories", index, "tier"),
                        f"category {category.id!r} has tier {category.tier}, which has no "
                        f"points in `tiers` (tiers: {', '.join(map(str, self.tiers))})",
                    )
                )
            if category.id in first:
                problems.append(
                    (
                        ("categories", index, "id"),
                        f"duplicate category id {category.id!r} (already the id of category "
                        f"{first[category.id] + 1} in the list)",
                    )
                )
            first.setdefault(category.id, index)
        if problems:
            error = _problem("; ".join(message for _, message in problems))
            error.context["problems"] = problems  # type: ignore[index]
            raise error
        return self

    # -- what the rest of the engine asks ----------------------------------------------------

    @cached_property
    def version(self) -> str:
        """The content hash: equal criteria have equal versions, whatever the file's layout."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @cached_property
    def by_precedence(self) -> tuple[Category, ...]:
        """Categories in the order a record tries them: highest tier first, then as listed."""
        order = sorted(range(len(self.categories)), key=lambda i: (-self.categories[i].tier, i))
        return tuple(self.categories[i] for i in order)

    def category_of(self, feed: str, record: Mapping[str, Any]) -> Category | None:
        """The category a record of `feed` (cc_incidents, rms_occurrences) falls in, if any."""
        return next((c for c in self.by_precedence if c.test(feed, record)), None)

    def points(self, category: Category | str, role: str) -> float | None:
        """tiers[tier] x roles[role], or None when the role is not an exposure."""
        if isinstance(category, str):
            category = self.category(category)
        if role not in self.roles:
            return None
        return round(self.tiers[category.tier] * self.roles[role], POINTS_DECIMALS)

    def category(self, category_id: str) -> Category:
        return next(c for c in self.categories if c.id == category_id)


def load_criteria(rules_dir: Path) -> tuple[Criteria, str]:
    """`rules_dir/criteria.yaml`, validated; returns it with the file's text.

    :raise RuleFileError: the file is missing, not YAML, or not valid criteria; each problem
        names the file and line.
    """
    path = Path(rules_dir) / CRITERIA_FILE
    document = load(path)
    return validate(document), path.read_text(encoding="utf-8")


def parse_criteria(text: str, name: str = CRITERIA_FILE) -> Criteria:
    """Criteria from YAML text (tests, the web editor later)."""
    return validate(parse(text, name))


def validate(document: LinedDocument) -> Criteria:
    if not isinstance(document.data, dict):
        raise RuleFileError(
            [document.problem((), "expected a mapping with tiers, roles, categories")]
        )
    try:
        return Criteria.model_validate(document.data)
    except ValidationError as error:
        raise RuleFileError(_problems(document, error)) from None


def _problems(document: LinedDocument, error: ValidationError) -> list[Problem]:
    problems = []
    errors = error.errors(include_url=False)
    failed = [tuple(item["loc"]) for item in errors]
    for item in errors:
        loc = tuple(p for p in item["loc"] if p != "[key]")
        # A list whose every item failed is also "too short": the items' errors say it all.
        if item["type"] == "too_short" and any(f[: len(loc)] == loc and f != loc for f in failed):
            continue
        context = item.get("ctx") or {}
        if "problems" in context:
            problems += [document.problem(path, message) for path, message in context["problems"]]
            continue
        if context.get("key") is not None:
            loc = (*loc, context["key"])
        where = ".".join(str(p) for p in loc)
        problems.append(document.problem(loc, _message(item, where)))
    return sorted(problems, key=lambda p: p.line or 0)


def _message(item: dict[str, Any], where: str) -> str:
    kind = item["type"]
    if kind == "criteria":
        return item["msg"]
    if kind == "extra_forbidden":
        return f"unknown key {where.rsplit('.', 1)[-1]!r}" + (
            f" in {where.rsplit('.', 1)[0]}" if "." in where else ""
        )
    if kind == "missing":
        return f"{where}: required"
    if kind in ("float_type", "int_type", "float_parsing", "int_parsing") or "float" in kind:
        noun = "a whole number" if "int" in kind else "a number"
        if where.startswith("roles."):
            return f"{where}: role multiplier must be {noun}, not {item['input']!r}"
        if where.startswith("tiers."):
            return f"{where}: tier points must be {noun}, not {item['input']!r}"
        return f"{where}: must be {noun}, not {item['input']!r}"
    return f"{where}: {item['msg']}"
