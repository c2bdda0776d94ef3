"""Shapes of the steering group's files, as frozen pydantic models that forbid unknown keys.

A model's errors become FILE:LINE problems through `problems_from`, using the lines the YAML
loader recorded. Conditions (`when`) are parsed by `engine.rules.conditions`, not here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
)

from engine.rules.fields import parse_duration
from engine.yamlfile import LinedDocument, Problem

Severity = Literal["low", "medium", "high"]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[StrictStr, AfterValidator(_duration)]
RuleId = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RuleTestModel(_Frozen):
    name: StrictStr | None = None
    given: dict[str, Any]
    expect: Literal["fire", "no_fire"]


class RuleModel(_Frozen):
    id: RuleId
    title: Annotated[StrictStr, Field(min_length=1)]
    description: StrictStr | None = None  # the basis; for people, not hashed
    severity: Severity
    on: Literal["snapshot", "exposure"] = "snapshot"
    when: Any
    notify: Annotated[list[StrictStr], Field(min_length=1)]
    cooldown: Duration = "0d"
    follow_up: list[Duration] = []
    max_age: Duration | None = None
    tests: list[RuleTestModel] = []


def _clock(text: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise ValueError(f'expected a time like "20:00", got {text!r}')
    return text


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


class RecipientModel(_Frozen):
    channels: Annotated[list[Literal["teams", "email"]], Field(min_length=1)]
    email: Annotated[StrictStr, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class QuietHoursModel(_Frozen):
    start: Annotated[StrictStr, AfterValidator(_clock)] = Field(alias="from")
    end: Annotated[StrictStr, AfterValidator(_clock)] = Field(alias="to")
    timezone: Annotated[StrictStr, AfterValidator(_zone)] = "Europe/London"
    except_severities: list[Severity] = Field(default=[], alias="except")


class EscalateModel(_Frozen):
    after: Duration
    to: StrictStr


class RoutingModel(_Frozen):
    recipients: Annotated[dict[str, RecipientModel], Field(min_length=1)]
    quiet_hours: QuietHoursModel | None = None
    digest: Duration | None = None
    escalate: EscalateModel | None = None


def dotted(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems_from(
    document: LinedDocument, error: ValidationError, known_keys: Iterable[str] = ()
) -> list[Problem]:
    """FILE:LINE problems for a pydantic error on `document.data`."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), list(known_keys), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"unknown key {loc[-1]!r}{hint}"
            if len(loc) > 1:
                message += f" in {dotted(loc[:-1])}"
        elif kind == "missing":
            message = f"missing key {dotted(loc)!r}"
            loc = loc[:-1]
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            message = f"{dotted(loc)}: expected {expected}, got {item['input']!r}"
        else:
            text = item["msg"].removeprefix("Value error, ")
            message = f"{dotted(loc)}: {text}" if loc else text
        problems.append(document.problem(loc, message))
    return problems
