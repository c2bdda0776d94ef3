"""The kinds of feed field (text, enum, code, list, date, datetime, number), each defined once.

A kind reads one value in Python (`read_text` for a CSV cell or a JSON string, stripped and
not empty; `read_value` for anything else a source gives: a JSON number, list, object or
boolean) and, for the CSV fast lane (`engine.ingest.csv_columns`), a whole column of stripped text
in
polars (`accepts`, `column`). The polars side only ever takes values whose result it
knows to be what `read_text` gives; everything else goes row by row through `read_text`,
which is the reference and gives the reject message. polars is imported only by that side.

Every value read is checked to be one this data can hold: no NUL byte in text, dates and
times between `EARLIEST` and `LATEST`, numbers within their field's range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from engine.sqltime import LONDON

if TYPE_CHECKING:
    import polars as pl

_fromisoformat = datetime.fromisoformat

# What a date or time in these feeds can be: none is before 1900 or after 2100 (the oldest
# serving officer's birth, the longest plan). A value outside is a typo or a placeholder
# (0001-01-01, 9999-12-31), and storing it would skew every window it falls in.
EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
EARLIEST_MOMENT = datetime.combine(EARLIEST, time(), UTC)
END_OF_RANGE = datetime.combine(LATEST + timedelta(days=1), time(), UTC)  # exclusive
DAYS_IN_RANGE = (LATEST - EARLIEST).days + 1

# An integer given where text is expected (a staff id as a JSON number) is taken as its
# digits; one this long is no identifier.
LONGEST_INTEGER = 10**40

# What Python's str.strip() strips (str.isspace), for polars, whose own whitespace differs.
# No character above U+3000 is whitespace (tests/engine/test_feed_values.py checks this).
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())

# ASCII digits only in the fast lane's patterns: the regex crate's \d, like Python's, takes
# any script's digits, which only `read_text` reads as Python does.
ISO_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]Z$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
PLAIN_NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
STORED_DATETIME = "%Y-%m-%d %H:%M:%S%.f"  # as `Moment.read_text` writes them
RANGE_TEXT = f"from {EARLIEST.isoformat()} to {LATEST.isoformat()}"


class InvalidValue(ValueError):
    """A value that can't be used; the message says what was expected."""


def describe(value: Any) -> str:
    """A non-text source value as a person reading the file would name it."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"{str(value).lower()} (a JSON boolean)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise InvalidValue(f"contains a NUL byte: {text!r}")
    return text


class Kind:
    """Plain text: any characters but NUL; a JSON integer is taken as its digits."""

    name = "text"
    takes_integers = True
    # Whether `read_text` stores any text without a NUL as it is (the row validator skips
    # the call for a row with no NUL in it).
    plain = True
    # Or a C-level test that `read_text` would store a text as it is, which the row
    # validator calls instead (a Python call per field costs as much as the rest of a row).
    as_is: Callable[[str], object] | None = None

    def read_text(self, text: str) -> Any:
        """The stored value for `text` (stripped, not empty). :raise InvalidValue:"""
        return _no_nul(text)

    def read_value(self, value: Any) -> Any:
        """The stored value for a source value that isn't text (not None), or None or ''
        for no value. :raise InvalidValue:"""
        if self.takes_integers and value.__class__ is int:
            if -LONGEST_INTEGER < value < LONGEST_INTEGER:
                return self.read_text(str(value))
            raise InvalidValue(f"an integer too long to be an identifier ({describe(value)})")
        raise InvalidValue(f"expected text, not {describe(value)}")

    # -- the polars lane: columns of stripped, non-empty text ------------------------------

    python_dtype = "String"  # the polars type of what `read_text` returns

    def parsed(self, text: pl.Expr) -> pl.Expr | None:
        """A column computed once per file from the text, which `accepts` and `column` use."""
        return None

    def accepts(self, text: pl.Expr, parsed: pl.Expr) -> pl.Expr:
        """Where `column` gives exactly what `read_text` would (else the row goes to it)."""
        return ~text.str.contains("\x00", literal=True)

    def column(self, text: pl.Expr, parsed: pl.Expr, typed: bool) -> pl.Expr:
        """The stored values where `accepts`; with `typed`, dates and times as polars
        types (UTC) rather than text."""
        return text

    def typed(self, stored: pl.Expr) -> pl.Expr:
        """`read_text`'s stored form as `column(typed=True)` gives it."""
        return stored

    def untyped(self, value: pl.Expr) -> pl.Expr:
        """A `column(typed=True)` value back in `read_text`'s stored form."""
        return value


class Enum(Kind):
    name = "enum"
    plain = False
    takes_integers = False

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices
        self._allowed = frozenset(choices)
        self.as_is = self._allowed.__contains__

    def read_text(self, text: str) -> str:
        if text not in self._allowed:
            raise InvalidValue(
                f"unknown value {text!r} (expected one of {', '.join(self.choices)})"
            )
        return text

    def accepts(self, text, parsed):
        return text.is_in(list(self.choices))


class Code(Kind):
    """A code of the force's systems: a value not of its shape (free text, a typo with
    spaces, a lower-case label) is an unknown code."""

    name = "code"
    plain = False

    def __init__(self, pattern: re.Pattern[str], label: str):
        self.pattern = pattern
        self.label = label
        self._match = self.as_is = pattern.fullmatch

    def read_text(self, text: str) -> str:
        if not self._match(text):
            raise InvalidValue(f"unknown {self.label} {text!r}")
        return text

    def accepts(self, text, parsed):
        return text.str.contains(f"^(?:{self.pattern.pattern})$")


class Listing(Kind):
    """A list, stored as its `|`-joined text: CSV gives `A|B`, JSON gives ["A", "B"]. A list
    with nothing in it (`|`, `[]`) is no value, as an empty cell is."""

    name = "list"
    plain = False

    def read_text(self, text: str) -> str | None:
        if "\x00" in text:
            _no_nul(text)
        if "|" not in text:
            return text
        return "|".join(item for item in (v.strip() for v in text.split("|")) if item) or None

    def read_value(self, value: Any) -> str | None:
        if value.__class__ is not list:
            return super().read_value(value)
        items = []
        for item in value:
            if item.__class__ is not str:
                item = super().read_value(item)  # an integer's digits, or InvalidValue
            items.append(_no_nul(item).strip())
        return "|".join(item for item in items if item) or None

    def _joined(self, text):
        import polars as pl

        parts = text.str.split("|").list.eval(pl.element().str.strip_chars(WHITESPACE))
        return parts.list.eval(pl.element().filter(pl.element() != "")).list.join("|")

    def column(self, text, parsed, typed):
        import polars as pl

        # A list of nothing (`|`) is no value, as for `read_text` (a list is never required).
        joined = self._joined(text)
        return pl.when(joined == "").then(None).otherwise(joined)


class Day(Kind):
    """A calendar date, `YYYY-MM-DD` (or another form of ISO 8601 that Python reads)."""

    name = "date"
    plain = False
    takes_integers = False

    def read_text(self, text: str) -> str:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidValue(f"not a date (YYYY-MM-DD): {text!r}") from None
        if EARLIEST <= day <= LATEST:
            return day.isoformat()
        raise InvalidValue(f"out of range: {text!r} (expected a date {RANGE_TEXT})")

    def parsed(self, text):
        # cache=False: nearly every value is new, and the cache costs as much as parsing.
        return text.str.to_date("%Y-%m-%d", strict=False, cache=False)

    def accepts(self, text, parsed):
        return text.str.contains(ISO_DATE) & parsed.is_between(EARLIEST, LATEST)

    def column(self, text, parsed, typed):
        return parsed if typed else text

    def typed(self, stored):
        return stored.str.to_date("%Y-%m-%d")

    def untyped(self, value):
        return value.dt.strftime("%Y-%m-%d")


class Moment(Kind):
    """An ISO 8601 datetime, stored as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`; no offset
    means Europe/London local time. The text is the form SQLAlchemy's SQLite DateTime type
    stores and PostgreSQL's COPY reads (with the session in UTC), so bulk loads need no
    further conversion."""

    name = "datetime"
    plain = False
    takes_integers = False

    def read_text(self, text: str) -> str:
        try:
            parsed = _fromisoformat(text)
        except ValueError:
            raise InvalidValue(f"not an ISO 8601 datetime: {text!r}") from None
        # The common case first: `YYYY-MM-DDTHH:MM:SSZ` (or a space for the T), already UTC
        # to the second, which a slice turns into stored text. Other forms of the same
        # length, such as week dates (`2024-W09-5T14:05:00Z`), are not it.
        if (
            len(text) == 20
            and text[19] == "Z"
            and text[4] == text[7] == "-"
            and text[13] == text[16] == ":"
        ):
            if EARLIEST.year <= parsed.year <= LATEST.year:
                return f"{text[:10]} {text[11:19]}.000000"
        elif len(text) == 10:  # a bare date is not a datetime
            raise InvalidValue(f"not an ISO 8601 datetime (no time): {text!r}")
        # A year of slack either side before converting: an offset moves a time by at most
        # a day, and converting one near year 1 or 9999 would overflow.
        elif EARLIEST.year - 1 <= parsed.year <= LATEST.year + 1:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=LONDON)
            utc = parsed.astimezone(UTC)
            if EARLIEST_MOMENT <= utc < END_OF_RANGE:
                return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
        raise InvalidValue(f"out of range: {text!r} (expected a time {RANGE_TEXT})")

    def parsed(self, text):
        return text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", strict=False, cache=False)

    def accepts(self, text, parsed):
        naive = (EARLIEST_MOMENT.replace(tzinfo=None), END_OF_RANGE.replace(tzinfo=None))
        return text.str.contains(ISO_UTC) & (parsed >= naive[0]) & (parsed < naive[1])

    def column(self, text, parsed, typed):
        if typed:
            return parsed.dt.replace_time_zone("UTC")
        # `2024-03-01T14:05:00Z` (as ISO_UTC matched) is `2024-03-01 14:05:00.000000`.
        return text.str.replace("T", " ", literal=True).str.replace("Z", ".000000", literal=True)

    def typed(self, stored):
        return stored.str.to_datetime(STORED_DATETIME, time_unit="us", time_zone="UTC")

    def untyped(self, value):
        return value.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")


class Number(Kind):
    """A finite number between `low` and `high`, stored as a float."""

    name = "number"
    plain = False
    python_dtype = "Float64"

    def __init__(self, low: float, high: float):
        self.low = low
        self.high = high

    def read_text(self, text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise InvalidValue(f"not a number: {text!r}") from None
        if self.low <= number <= self.high:  # never NaN; infinite only if the range is
            return number
        return self._in_range(number, text)

    def read_value(self, value: Any) -> float:
        if value.__class__ is not int and value.__class__ is not float:
            raise InvalidValue(f"expected a number, not {describe(value)}")
        try:
            return self._in_range(float(value), value)
        except OverflowError:  # an integer past float's range
            raise InvalidValue(
                f"out of range: an integer of {value.bit_length()} bits "
                f"(expected {self.low:g} to {self.high:g})"
            ) from None

    def _in_range(self, number: float, given: Any) -> float:
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidValue(f"not a finite number: {_short(given)}")
        if not self.low <= number <= self.high:
            raise InvalidValue(
                f"out of range: {_short(given)} (expected {self.low:g} to {self.high:g})"
            )
        return number

    def accepts(self, text, parsed):
        import polars as pl

        number = text.cast(pl.Float64, strict=False)
        return text.str.contains(PLAIN_NUMBER) & number.is_between(self.low, self.high)

    def column(self, text, parsed, typed):
        import polars as pl

        return text.cast(pl.Float64, strict=False)


def _short(value: Any) -> str:
    if value.__class__ is int and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
