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


def parse_date(value: Any) -> str:
    """A calendar date, as `YYYY-MM-DD`."""
    text = _text(value).strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidValue(f"not a date (YYYY-MM-DD): {value!r}") from None


def _utc_to_the_second(text: str) -> bool:
    """Whether `text`, which `datetime.fromisoformat` reads, is `YYYY-MM-DDTHH:MM:SSZ` (or
    with a space for the T): the form a slice turns into stored text. Other forms of the
    same length, such as week dates (`2024-W09-5T14:05:00Z`), are not."""
    return (
        len(text) == 20
        and text[19] == "Z"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    )


def parse_datetime(value: Any) -> str:
    """An ISO 8601 datetime as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`.

    No offset means Europe/London local time. The text is the form SQLAlchemy's SQLite
    DateTime type stores and PostgreSQL's COPY reads (with the session in UTC), so bulk loads
    need no further conversion.
    """
    text = _text(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"not an ISO 8601 datetime: {value!r}") from None
    if len(text) == 10:  # a bare date is not a datetime
        raise InvalidValue(f"not an ISO 8601 datetime (no time): {value!r}")
    if _utc_to_the_second(text):  # the common case
        return f"{text[:10]} {text[11:19]}.000000"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def to_datetime(stored: str) -> datetime:
    """The aware UTC datetime for a value `parse_datetime` produced."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


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


def parse_list(value: Any) -> str | None:
    """A list stored as its `|`-joined text: CSV gives `A|B`, JSON gives ["A", "B"]. A list
    with nothing in it (`|`, `[]`) is stored as no value, as an empty cell is."""
    if isinstance(value, list):
        items = [_text(v).strip() for v in value]
    else:
        items = [v.strip() for v in _text(value).split("|")]
    return "|".join(v for v in items if v) or None


def _enum(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value).strip()
        if text not in choices:
            raise InvalidValue(_enum_message(text, choices))
        return text

    return check


def _enum_message(value: str, choices: tuple[str, ...]) -> str:
    return f"unknown value {value!r} (expected one of {', '.join(choices)})"


def _code(pattern: re.Pattern[str], label: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value).strip()
        if not pattern.fullmatch(text):
            raise InvalidValue(f"unknown {label} {text!r}")
        return text

    return check


def _string(value: Any) -> str:
    return _text(value).strip()


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]  # any source value (CSV text or JSON) -> stored value
    required: bool = False
    default: Any = None
    # text, enum, code, list, date, datetime or number: how the value is stored, and which
    # fast path the generated validator takes for plain text values.
    kind: str = "text"
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    label: str = ""


def text(name: str, required: bool = False) -> Field:
    return Field(name, _string, required)


def enum(name: str, *choices: str, required: bool = False, default: str | None = None) -> Field:
    return Field(name, _enum(choices), required, default, kind="enum", choices=choices)


def day(name: str, required: bool = False) -> Field:
    return Field(name, parse_date, required, kind="date")


def moment(name: str, required: bool = False) -> Field:
    return Field(name, parse_datetime, required, kind="datetime")


def number(name: str, required: bool = False) -> Field:
    return Field(name, parse_number, required, kind="number")


def listing(name: str) -> Field:
    return Field(name, parse_list, kind="list")


def code(name: str, pattern: re.Pattern[str], label: str, required: bool = False) -> Field:
    return Field(name, _code(pattern, label), required, kind="code", pattern=pattern, label=label)


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

    The function is generated as straight-line Python, one block per field, because this is
    the per-row cost of every ingest: a loop over field descriptors costs twice as much.
    """
    position = {name: i for i, name in enumerate(columns)}
    count = len(columns)
    scope: dict[str, Any] = {
        "Reject": Reject,
        "InvalidValue": InvalidValue,
        "fromisoformat": datetime.fromisoformat,
        "enum_message": _enum_message,
        "pad": (None,) * count,
    }
    lines = [
        "def validate(line, values):",
        "    width = len(values)",
        f"    if width != {count}:",
        f"        if width > {count}:",
        f"            return Reject(line, None, f'{{width}} values but the header has {count} "
        "columns')",
        "        values = (*values, *pad[width:])",
    ]
    names = []
    for n, f in enumerate(feed.fields):
        v = f"v{n}"
        names.append(v)
        scope[f"parse{n}"] = f.parse
        scope[f"default{n}"] = f.default
        if f.required:
            missing = f"return Reject(line, {f.name!r}, {f.name + ': required field is empty'!r})"
        else:
            missing = f"{v} = default{n}"
        reject = f"return Reject(line, {f.name!r}, {f.name + ': '!r} + "
        i = position.get(f.name)
        if i is None:
            lines.append(f"    {missing}")
            continue
        # Plain text (every CSV value) is checked inline for the common kinds; anything else
        # (JSON numbers and lists, dates from a SQL driver) goes through the field's parser.
        lines += [
            f"    {v} = values[{i}]",
            f"    if {v}.__class__ is str:",
            f"        {v} = {v}.strip()",
            f"        if not {v}:",
            f"            {missing}",
        ]
        if f.kind == "enum":
            scope[f"allowed{n}"] = frozenset(f.choices)
            scope[f"choices{n}"] = f.choices
            lines += [
                f"        elif {v} not in allowed{n}:",
                f"            {reject}enum_message({v}, choices{n}))",
            ]
        elif f.kind == "code":
            scope[f"match{n}"] = f.pattern.fullmatch
            lines += [
                f"        elif not match{n}({v}):",
                f"            {reject}{'unknown ' + f.label + ' '!r} + repr({v}))",
            ]
        elif f.kind == "list":
            lines += [f"        elif '|' in {v}:", f"            {v} = parse{n}({v})"]
        elif f.kind == "datetime":
            # Already UTC to the second ("2024-03-01T14:05:00Z"): check it, then reshape it.
            lines += [
                f"        elif len({v}) == 20 and {v}[19] == 'Z' and {v}[4] == {v}[7] == '-'"
                f" and {v}[13] == {v}[16] == ':':",
                "            try:",
                f"                fromisoformat({v})",
                "            except ValueError:",
                f"                {reject}{'not an ISO 8601 datetime: '!r} + repr({v}))",
                f"            {v} = f'{{{v}[:10]}} {{{v}[11:19]}}.000000'",
            ]
        if f.kind in ("datetime", "date", "number"):
            lines += [
                "        else:",
                "            try:",
                f"                {v} = parse{n}({v})",
                "            except InvalidValue as error:",
                f"                {reject}str(error))",
            ]
        lines += [
            f"    elif {v} is None or {v} == []:",
            f"        {missing}",
            "    else:",
            "        try:",
            f"            {v} = parse{n}({v})",
            "        except InvalidValue as error:",
            f"            {reject}str(error))",
            f"        if {v} == '':",
            f"            {missing}",
        ]
    lines.append(f"    return ({', '.join(names)},)")
    exec(compile("\n".join(lines), f"<validator {feed.name}>", "exec"), scope)  # noqa: S102
    return scope["validate"]
