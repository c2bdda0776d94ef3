"""Times and dates in hand-written SQL, the same on SQLite and PostgreSQL.

SQLAlchemy's column types convert values for ORM and Core statements, but set-based scoring
binds plain parameters into text SQL. SQLite stores UTC datetimes as text
(`YYYY-MM-DD HH:MM:SS.ffffff`, see engine.ingest.feeds.parse_datetime) and dates as `YYYY-MM-DD`, so
comparisons there must bind exactly that text; PostgreSQL takes the objects themselves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def bind_datetime(dialect: str, value: datetime) -> datetime | str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: times are timezone-aware UTC")
    utc = value.astimezone(UTC)
    if dialect == "sqlite":
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    return utc


def bind_date(dialect: str, value: date) -> date | str:
    return value.isoformat() if dialect == "sqlite" else value


def read_datetime(value: datetime | str | None) -> datetime | None:
    """A datetime from a raw result: text from SQLite, an aware datetime from PostgreSQL."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def read_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def local_date(moment: datetime) -> date:
    """The force's calendar date at `moment` (rest days and absences are local dates)."""
    return moment.astimezone(LONDON).date()


def parse_as_of(text: str) -> datetime:
    """An evaluation time from the command line, as aware UTC.

    ISO 8601 with an offset or `Z` is taken as given; without one it is Europe/London time. A
    bare date means the end of that day in London (23:59:59.999999), so that everything on the
    day counts, as a person asking "as of 30 June" expects.

    :raise ValueError: not a date or datetime.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        end = datetime.combine(day, time.max, tzinfo=LONDON)
        return end.astimezone(UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(UTC)


def days_before(moment: datetime, days: int) -> datetime:
    """The start (exclusive) of an N-day window ending at `moment`: exactly N x 24 hours."""
    return moment - timedelta(days=days)
