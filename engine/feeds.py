"""The eight force feeds: their fields, natural keys and how each value is checked.

This is CONTRACT.md section 1 as data. Validation is compiled once per feed into a list of
small converters so that a row costs a handful of C-level calls, not a schema walk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# Codes the force's systems use. A value that does not have the shape of a code (free text,
# a typo with spaces, a lower-case label) is an unknown code and the row is quarantined.
CLOSING_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
# Home Office Counting Rules classification codes: "1/1", "4/4", "8N", "28E", "195/94".
HOCR_CODE = re.compile(r"\d{1,3}[A-Z]?(/\d{1,3}[A-Z]?)?")


class InvalidValue(ValueError):
    """A value that can't be used; the message says what was expected."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def parse_date(value: Any) -> date:
    try:
        return date.fromisoformat(_text(value))
    except ValueError:
        raise InvalidValue(f"not a date (YYYY-MM-DD): {value!r}") from None


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 datetime, in UTC; no offset means Europe/London local time."""
    text = _text(value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"not an ISO 8601 datetime: {value!r}") from None
    if len(text) == 10:  # a bare date is not a datetime
        raise InvalidValue(f"not an ISO 8601 datetime (no time): {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC)


def parse_number(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidValue(f"not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"not a number: {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidValue(f"not a finite number: {value!r}")
    return number


def parse_list(value: Any) -> str:
    """A list stored as its `|`-joined text: CSV gives `A|B`, JSON gives ["A", "B"]."""
    if isinstance(value, list):
        items = [_text(v).strip() for v in value]
    else:
        items = [v.strip() for v in _text(value).split("|")]
    return "|".join(v for v in items if v)


def _enum(choices: tuple[str, ...]) -> Callable[[Any], str]:
    allowed = frozenset(choices)
    expected = ", ".join(choices)

    def check(value: Any) -> str:
        text = _text(value).strip()
        if text not in allowed:
            raise InvalidValue(f"unknown value {value!r} (expected one of {expected})")
        return text

    return check


def _code(pattern: re.Pattern[str], kind: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value).strip()
        if not pattern.fullmatch(text):
            raise InvalidValue(f"unknown {kind} {value!r}")
        return text

    return check


def _string(value: Any) -> str:
    return _text(value).strip()


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]
    required: bool = False
    default: Any = None
    # The SQL type family, for tables and bulk loading: text, date, datetime, number.
    kind: str = "text"


def text(name: str, required: bool = False) -> Field:
    return Field(name, _string, required)


def enum(name: str, *choices: str, required: bool = False, default: str | None = None) -> Field:
    return Field(name, _enum(choices), required, default)


def day(name: str, required: bool = False) -> Field:
    return Field(name, parse_date, required, kind="date")


def moment(name: str, required: bool = False) -> Field:
    return Field(name, parse_datetime, required, kind="datetime")


def number(name: str, required: bool = False) -> Field:
    return Field(name, parse_number, required, kind="number")


def listing(name: str) -> Field:
    return Field(name, parse_list)


def code(name: str, pattern: re.Pattern[str], kind: str, required: bool = False) -> Field:
    return Field(name, _code(pattern, kind), required)


@dataclass(frozen=True)
class Feed:
    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    # The field naming a person: rows for people not yet known are held until they arrive.
    person_field: str | None = None
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def key_of(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(values[self.columns.index(k)] for k in self.key)


FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        Feed(
            "units",
            (
                text("unit_id", True),
                text("parent_id"),
                enum("level", "force", "command", "area", "department", "team", required=True),
                text("name", True),
            ),
            key=("unit_id",),
        ),
        Feed(
            "people",
            (
                text("staff_id", True),
                text("display_name", True),
                text("email"),
                text("collar_number"),
                enum("staff_type", "officer", "staff", "pcso", "special", required=True),
                text("rank_or_grade"),
                text("role_group", True),
                text("unit_id", True),
                text("supervisor_id"),
                day("service_start", True),
                day("leave_date"),
                day("valid_from", True),
            ),
            key=("staff_id", "valid_from"),
        ),
        Feed(
            "cc_incidents",
            (
                text("incident_urn", True),
                moment("created_at", True),
                moment("closed_at"),
                code("opening_code", CLOSING_CODE, "opening code"),
                code("closing_code", CLOSING_CODE, "closing code", True),
                listing("qualifiers"),
                text("grade"),
                text("unit_id"),
            ),
            key=("incident_urn",),
        ),
        Feed(
            "cc_deployments",
            (
                text("incident_urn", True),
                text("staff_id", True),
                enum(
                    "role",
                    "first_on_scene",
                    "attending",
                    "supervisor",
                    "call_handler",
                    "dispatcher",
                    "other",
                    required=True,
                ),
                moment("arrived_at"),
                moment("cleared_at"),
            ),
            key=("incident_urn", "staff_id", "role"),
            person_field="staff_id",
        ),
        Feed(
            "rms_occurrences",
            (
                text("occurrence_ref", True),
                moment("reported_at", True),
                code("hocr_code", HOCR_CODE, "Home Office crime code", True),
                listing("crime_flags"),
                enum("iioc_category", "A", "B", "C"),
                enum("status", "open", "closed", required=True),
                moment("closed_at"),
                text("linked_incident_urn"),
                text("unit_id"),
            ),
            key=("occurrence_ref",),
        ),
        Feed(
            "rms_involvements",
            (
                text("occurrence_ref", True),
                text("staff_id", True),
                enum(
                    "role",
                    "oic",
                    "investigator",
                    "attending",
                    "interviewer",
                    "image_reviewer",
                    "family_liaison",
                    "other",
                    required=True,
                ),
                moment("assigned_at", True),
                moment("unassigned_at"),
            ),
            key=("occurrence_ref", "staff_id", "role", "assigned_at"),
            person_field="staff_id",
        ),
        Feed(
            "rest_day_cancellations",
            (
                text("cancellation_id", True),
                text("staff_id", True),
                day("rest_day", True),
                day("notified_on", True),
                enum("status", "cancelled", "reinstated", default="cancelled"),
            ),
            key=("cancellation_id",),
            person_field="staff_id",
        ),
        Feed(
            "absences",
            (
                text("spell_id", True),
                text("staff_id", True),
                day("start_date", True),
                day("end_date"),
                enum("absence_type", "sickness", "injury_on_duty", "other", required=True),
                text("reason_group"),
                number("working_days_lost"),
            ),
            key=("spell_id",),
            person_field="staff_id",
        ),
    )
}


def feed_for_filename(filename: str) -> str | None:
    """The feed a file name's prefix names (`cc_incidents_2025-06.csv` -> `cc_incidents`)."""
    stem = filename.rsplit("/", 1)[-1]
    # Longest first, so `rms_occurrences` is never mistaken for a shorter name.
    for name in sorted(FEEDS, key=len, reverse=True):
        if stem == name or stem.startswith((name + "_", name + ".", name + "-")):
            return name
    return None


@dataclass(frozen=True)
class Reject:
    line: int
    field: str | None
    reason: str


def compile_validator(
    feed: Feed, columns: Sequence[str]
) -> Callable[[int, Sequence[Any]], tuple[Any, ...] | Reject]:
    """A function turning one source row into the feed's values in column order, or a Reject.

    `columns` is the source's header; columns the feed doesn't know are ignored and feed
    fields the source lacks are empty. Empty strings count as missing.
    """
    position = {name: i for i, name in enumerate(columns)}
    plan = [(f, position.get(f.name)) for f in feed.fields]

    def validate(line: int, values: Sequence[Any]) -> tuple[Any, ...] | Reject:
        out = []
        width = len(values)
        for f, i in plan:
            raw = values[i] if i is not None and i < width else None
            if raw is None or raw == "" or raw == []:
                if f.required:
                    return Reject(line, f.name, f"{f.name}: required field is empty")
                out.append(f.default)
                continue
            try:
                value = f.parse(raw)
            except InvalidValue as error:
                return Reject(line, f.name, f"{f.name}: {error}")
            if value == "" and f.required:
                return Reject(line, f.name, f"{f.name}: required field is empty")
            out.append(value if value != "" else f.default)
        return tuple(out)

    return validate
