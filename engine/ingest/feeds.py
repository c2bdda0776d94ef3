"""The eight force feeds: their fields, natural keys and how a row of one is checked.

This is CONTRACT.md section 1 as data. Each field is of a kind (`engine.ingest.field_kinds`), which
reads its values both row by row and, for the CSV fast lane, column by column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.ingest.field_kinds import (
    DAYS_IN_RANGE,
    EARLIEST,
    LATEST,
    Code,
    Day,
    Enum,
    InvalidValue,
    Kind,
    Listing,
    Moment,
    Number,
)
from engine.ingest.field_kinds import describe as _describe

# What other modules take from here (the range and InvalidValue are engine.ingest.field_kinds').
__all__ = ["EARLIEST", "FEEDS", "LATEST", "Feed", "InvalidValue", "Reject", "compile_validator"]

# Codes the force's systems use. A value that does not have the shape of a code (free text,
# a typo with spaces, a lower-case label) is an unknown code and the row is quarantined.
CLOSING_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
# Home Office Counting Rules classification codes: "1/1", "4/4", "8N", "28E", "195/94".
HOCR_CODE = re.compile(r"\d{1,3}[A-Z]?(/\d{1,3}[A-Z]?)?")

_TEXT = Kind()
_DAY = Day()
_MOMENT = Moment()
_LISTING = Listing()


def parse_datetime(value: Any) -> str:
    """An ISO 8601 datetime, given as text, as UTC text `YYYY-MM-DD HH:MM:SS.ffffff` (no
    offset: London time), as a datetime field stores it. :raise InvalidValue:"""
    if value.__class__ is not str:
        raise InvalidValue(f"expected text, not {_describe(value)}")
    if not value.strip():
        raise InvalidValue("no time given")
    return _MOMENT.read_text(value.strip())


def to_datetime(stored: str) -> datetime:
    """The aware UTC datetime for a value `parse_datetime` produced."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def check_watermark(value: Any) -> str:
    """A pulled source's watermark as the text to remember and send back: a time
    `parse_datetime` reads (in range), given as text. :raise InvalidValue: anything else,
    such as a JSON `Infinity` or `NaN`, which would be sent back as `since=inf`."""
    parse_datetime(value)
    return value.strip()


@dataclass(frozen=True)
class Field:
    name: str
    reads: Kind  # how a value of this field is read, and stored
    required: bool = False
    default: Any = None

    @property
    def kind(self) -> str:
        """text, enum, code, list, date, datetime or number: how the value is stored."""
        return self.reads.name

    @property
    def choices(self) -> tuple[str, ...]:
        return getattr(self.reads, "choices", ())


def text(name: str, required: bool = False) -> Field:
    return Field(name, _TEXT, required)


def enum(name: str, *choices: str, required: bool = False, default: str | None = None) -> Field:
    return Field(name, Enum(choices), required, default)


def day(name: str, required: bool = False) -> Field:
    return Field(name, _DAY, required)


def moment(name: str, required: bool = False) -> Field:
    return Field(name, _MOMENT, required)


def number(name: str, low: float, high: float, required: bool = False) -> Field:
    return Field(name, Number(low, high), required)


def listing(name: str) -> Field:
    return Field(name, _LISTING)


def code(name: str, pattern: re.Pattern[str], label: str, required: bool = False) -> Field:
    return Field(name, Code(pattern, label), required)


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

    def header_problem(self, columns: Sequence[str]) -> str | None:
        """Why a source with these columns can't be read as this feed at all, or None: a
        required column missing, or a column named twice (which value would count?)."""
        seen: set[str] = set()
        twice = [c for c in columns if c in seen or seen.add(c)]
        if twice:
            names = ", ".join(dict.fromkeys(twice))
            return f"not a {self.name} file: column(s) named twice in the header: {names}"
        missing = [c for c in self.required if c not in seen]
        if missing:
            return f"not a {self.name} file: missing required column(s) {', '.join(missing)}"
        return None


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
                # A spell can lose no more working days than there are days in the range.
                number("working_days_lost", 0, DAYS_IN_RANGE),
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

    :raise ValueError: the header names a column twice (`Feed.header_problem`).
    """
    if len(set(columns)) != len(columns):
        raise ValueError(feed.header_problem(columns))
    position = {name: i for i, name in enumerate(columns)}
    count = len(columns)
    pad = (None,) * count
    # One step per field: where its value is in a row (None: never there), how it's read,
    # and when text is stored as it is without reading it (`Kind.plain`, `Kind.as_is`).
    steps = [
        (
            f.name,
            position.get(f.name),
            f.reads.read_text,
            f.reads.plain,
            f.reads.as_is,
            f.reads.read_value,
            f"{f.name}: required field is empty" if f.required else None,
            f.default,
        )
        for f in feed.fields
    ]

    def validate(line: int, values: Sequence[Any]) -> tuple[Any, ...] | Reject:
        width = len(values)
        if width != count:
            if width > count:
                return Reject(line, None, f"{width} values but the header has {count} columns")
            values = (*values, *pad[width:])
        # Plain text fields are read one call per row, not one per field: a row of text
        # with no NUL anywhere (every CSV row, nearly) has nothing in them to refuse.
        try:
            careful = "\x00" in "".join(values)
        except TypeError:  # not all text (JSON, SQL): every value read by its kind
            careful = True
        row = []
        for name, i, read_text, plain, as_is, read_value, required, default in steps:
            value = None if i is None else values[i]
            try:
                # Plain text first; then anything else (JSON numbers and lists, booleans,
                # objects).
                if value.__class__ is str:
                    value = value.strip()
                    if value:
                        if (plain and not careful) or (as_is is not None and as_is(value)):
                            row.append(value)
                        else:
                            row.append(read_text(value))
                        continue
                elif value is not None:
                    value = read_value(value)
                    if value is not None and value != "":
                        row.append(value)
                        continue
            except InvalidValue as error:
                return Reject(line, name, f"{name}: {error}")
            if required is not None:
                return Reject(line, name, required)
            row.append(default)
        return tuple(row)

    return validate


def parse_ndjson_line(text: str) -> dict[str, Any]:
    """One NDJSON line as its object. :raise InvalidValue: the line is not one JSON object
    (not JSON, `NaN` or `Infinity`, a key given twice, nested past Python's recursion limit,
    an integer too long to read, a string no database can store), with the reason."""
    try:
        record = json.loads(text, parse_constant=_not_json, object_pairs_hook=_object)
    except json.JSONDecodeError as error:
        raise InvalidValue(f"not valid JSON: {error.msg} (column {error.colno})") from None
    except RecursionError:
        raise InvalidValue("not valid JSON here: nested too deeply") from None
    except ValueError as error:  # ours below, or an integer past int's digit limit
        reason = "an integer too long" if "digits" in str(error) else str(error)
        raise InvalidValue(f"not valid JSON here: {reason}") from None
    if record.__class__ is not dict:
        raise InvalidValue(f"not a JSON object: {_describe(record)}")
    # `\ud800` alone is valid JSON but no character: no database can store it.
    if "\\u" in text and _SURROGATE.search(text):
        try:
            json.dumps(record, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidValue("not valid text: an unpaired surrogate (\\ud800-\\udfff)") from None
    return record


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice!r} given twice")
    return record
