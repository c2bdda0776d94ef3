"""Values a careless or hostile force system sends (issue 15 section 2): each is a rejected row
with its line, or the file fails as not that feed, and every other row goes in, whichever
way the file is read (the polars lane, the Python lane, NDJSON) and on both databases."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.ingest import field_kinds
from engine.ingest.batches import Ingestor
from engine.ingest.feeds import (
    EARLIEST,
    FEEDS,
    LATEST,
    InvalidValue,
    check_watermark,
    compile_validator,
    parse_ndjson_line,
)
from engine.ingest.files import ingest_files
from models import FEED_TABLES, table_of
from models.db import make_engine, migrate
from tests.feedfiles import SAMPLE_ROWS, write_csv, write_force
from trauma_tracker.cli import main

# How a file goes in: its format, and the ingest options.
WAYS = {
    "polars lane": ("csv", {}),
    "python lane": ("csv", {"fast_csv": False}),
    "ndjson": ("ndjson", {}),
}


@pytest.fixture
def engine(database_url, tmp_path):
    engine = make_engine(database_url)
    migrate(engine)
    # The people and units the feeds below refer to.
    list(ingest_files(Ingestor(engine), write_force(tmp_path / "base")))
    yield engine
    engine.dispose()


@pytest.fixture(params=list(WAYS))
def way(request):
    return request.param


def ingest(engine, path, way):
    fast_csv = WAYS[way][1].get("fast_csv", True)
    [report] = ingest_files(Ingestor(engine, fast_csv=fast_csv), [path])
    return report


def write(folder: Path, feed: str, rows: list[dict], way: str) -> tuple[Path, int]:
    """`rows` as a file read `way`, and the line of its first row. NDJSON keeps values as
    given (a JSON value per field; a str that is already a JSON text goes in verbatim)."""
    if WAYS[way][0] == "csv":
        return write_csv(folder / f"{feed}_values.csv", rows, columns=FEEDS[feed].columns), 2
    path = folder / f"{feed}_values.ndjson"
    path.write_text("".join(_json_line(row) + "\n" for row in rows), encoding="utf-8")
    return path, 1


class Raw(str):
    """An NDJSON line's text as written, not encoded again."""


def with_raw(row: dict, name: str, text: str) -> Raw:
    """`row` as an NDJSON line with `name` last, as the JSON text `text`."""
    encoded = json.dumps({k: v for k, v in row.items() if k != name and v != ""})
    return Raw(f"{encoded[:-1]}, {json.dumps(name)}: {text}}}")


def _json_line(row) -> str:
    if isinstance(row, Raw):
        return str(row)
    return json.dumps({k: v for k, v in row.items() if v != ""})


def rows_of(engine, feed, key):
    table = table_of(FEED_TABLES[feed])
    with engine.connect() as conn:
        return {r._mapping[key]: dict(r._mapping) for r in conn.execute(sa.select(table))}


def rejected(report, first_line):
    """(row ordinal from 0, field) of each reject."""
    return [(r.line - first_line, r.field) for r in report.rejects]


def test_times_at_the_calendars_edge_and_out_of_range_are_rejected_rows(engine, tmp_path, way):
    """`9999-12-31T23:59:59-14:00` overflowed converting to UTC and lost the whole file."""
    good, _ = SAMPLE_ROWS["cc_incidents"]
    times = [
        "2025-01-02T10:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00",  # London time, before any offset it knows
        "1899-12-31T23:59:59Z",
        "2101-01-01T00:00:00Z",
        "2100-12-31T23:30:00-01:00",  # 2101 in UTC
        "1900-01-01T00:00:00Z",  # the first and last moments in range
        "2100-12-31T23:59:59.999999Z",
    ]
    rows = [{**good, "incident_urn": f"T{i}", "created_at": t} for i, t in enumerate(times)]
    path, first = write(tmp_path, "cc_incidents", rows, way)

    report = ingest(engine, path, way)

    assert report.outcome == "ok"
    assert rejected(report, first) == [(i, "created_at") for i in range(1, 7)]
    assert all("out of range" in r.reason for r in report.rejects)
    stored = rows_of(engine, "cc_incidents", "incident_urn")
    assert stored["T0"]["created_at"] == datetime(2025, 1, 2, 10, tzinfo=UTC)
    assert stored["T7"]["created_at"] == datetime(1900, 1, 1, tzinfo=UTC)
    assert stored["T8"]["created_at"] == datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert not {f"T{i}" for i in range(1, 7)} & set(stored)


def test_dates_and_days_lost_out_of_range_are_rejected_rows(engine, tmp_path, way):
    absence, _ = SAMPLE_ROWS["absences"]
    changes = [
        {"start_date": "1899-12-31"},
        {"start_date": "2101-01-01"},
        {"end_date": "0001-01-01"},
        {"end_date": "9999-12-31"},
        {"working_days_lost": "1e308"},
        {"working_days_lost": "-1"},
        {"working_days_lost": "1" * 5000},  # as text: a number, too large
        {"start_date": "1900-01-01", "end_date": "2100-12-31", "working_days_lost": "73414"},
        {"working_days_lost": "0"},
    ]
    rows = [{**absence, "spell_id": f"A{i}", **change} for i, change in enumerate(changes)]
    path, first = write(tmp_path, "absences", rows, way)

    report = ingest(engine, path, way)

    assert report.outcome == "ok"
    assert rejected(report, first) == [
        (0, "start_date"),
        (1, "start_date"),
        (2, "end_date"),
        (3, "end_date"),
        (4, "working_days_lost"),
        (5, "working_days_lost"),
        (6, "working_days_lost"),
    ]
    reasons = [r.reason for r in report.rejects]
    assert all("out of range" in reason for reason in reasons[:6])
    assert "not a finite number" in reasons[6]
    stored = rows_of(engine, "absences", "spell_id")
    assert (stored["A7"]["start_date"], stored["A7"]["end_date"]) == (EARLIEST, LATEST)
    assert stored["A7"]["working_days_lost"] == 73414.0
    assert stored["A8"]["working_days_lost"] == 0.0


def test_a_nul_byte_in_a_value_is_a_rejected_row(engine, tmp_path, way):
    good, other = SAMPLE_ROWS["cc_incidents"]
    rows = [
        {**good, "incident_urn": "N0", "unit_id": "T\x001"},
        {**good, "incident_urn": "N1", "grade": "\x00"},
        {**good, "incident_urn": "N2", "qualifiers": "CHILD|\x00FIREARM"},
        {**good, "incident_urn": "N\x003"},
        {**other, "incident_urn": "N4"},
    ]
    path, first = write(tmp_path, "cc_incidents", rows, way)

    report = ingest(engine, path, way)

    assert report.outcome == "ok"
    assert rejected(report, first) == [
        (0, "unit_id"),
        (1, "grade"),
        (2, "qualifiers"),
        (3, "incident_urn"),
    ]
    assert all("NUL" in r.reason for r in report.rejects)
    stored = rows_of(engine, "cc_incidents", "incident_urn")
    assert "N4" in stored
    assert not any("\x00" in urn for urn in stored)


@pytest.mark.parametrize("way", ["ndjson"])
def test_json_values_of_the_wrong_type_are_rejected_rows(engine, tmp_path, way):
    """Text fields take JSON strings, and integers as their digits; numbers take numbers."""
    good, _ = SAMPLE_ROWS["cc_incidents"]
    absence, _ = SAMPLE_ROWS["absences"]
    nested = "[" * 10_000 + "]" * 10_000
    incidents = [
        with_raw({**good, "incident_urn": "W0"}, "grade", "1e999"),
        with_raw({**good, "incident_urn": "W1"}, "grade", "NaN"),
        {**good, "incident_urn": "W2", "grade": {"nested": True}},
        {**good, "incident_urn": "W3", "grade": ["a"]},
        {**good, "incident_urn": "W4", "grade": True},
        {**good, "incident_urn": "W5", "unit_id": 1.5},
        with_raw({**good, "incident_urn": "W6"}, "grade", nested),
        with_raw({**good, "incident_urn": "W7"}, "grade", "7" * 5000),
        {**good, "incident_urn": "W8", "qualifiers": ["CHILD", {"a": 1}]},
        {**good, "incident_urn": "W9", "created_at": 1735812000},
        Raw(json.dumps({**good, "incident_urn": "W10"})[:-1] + ', "incident_urn": "W10b"}'),
        {**good, "incident_urn": 11, "grade": 2, "qualifiers": ["CHILD", 3]},  # integers
        {**good, "incident_urn": "W12", "grade": None},
        with_raw({**good, "incident_urn": "W13"}, "grade", '"\\ud800"'),  # no character
        with_raw({**good, "incident_urn": "W14"}, "grade", '"\\ud83d\\ude00"'),  # a pair: one
    ]
    path, first = write(tmp_path, "cc_incidents", incidents, way)

    report = ingest(engine, path, way)

    assert report.outcome == "ok"
    assert rejected(report, first) == [
        (0, "grade"),
        (1, None),
        (2, "grade"),
        (3, "grade"),
        (4, "grade"),
        (5, "unit_id"),
        (6, None),
        (7, None),
        (8, "qualifiers"),
        (9, "created_at"),
        (10, None),
        (13, None),
    ]
    reasons = [r.reason for r in report.rejects]
    assert "NaN" in reasons[1] and "nested too deeply" in reasons[6]
    assert "integer too long" in reasons[7] and "given twice" in reasons[10]
    stored = rows_of(engine, "cc_incidents", "incident_urn")
    assert (stored["11"]["grade"], stored["11"]["qualifiers"]) == ("2", "CHILD|3")
    assert stored["W12"]["grade"] is None
    assert stored["W14"]["grade"] == "\U0001f600"
    assert "unpaired surrogate" in reasons[-1]
    assert set(stored) & {f"W{i}" for i in range(11)} == set()

    absences = [
        {**absence, "spell_id": "D0", "working_days_lost": 1e308},
        with_raw({**absence, "spell_id": "D1"}, "working_days_lost", "9" * 5000),
        {**absence, "spell_id": "D2", "working_days_lost": 10**400},
        {**absence, "spell_id": "D3", "working_days_lost": "many"},
        {**absence, "spell_id": "D4", "working_days_lost": True},
        {**absence, "spell_id": "D5", "working_days_lost": 12},
        {**absence, "spell_id": "D6", "working_days_lost": 2.5},
    ]
    path, first = write(tmp_path, "absences", absences, way)

    report = ingest(engine, path, way)

    assert rejected(report, first) == [
        (0, "working_days_lost"),
        (1, None),
        (2, "working_days_lost"),
        (3, "working_days_lost"),
        (4, "working_days_lost"),
    ]
    stored = rows_of(engine, "absences", "spell_id")
    assert (stored["D5"]["working_days_lost"], stored["D6"]["working_days_lost"]) == (12, 2.5)


@pytest.mark.parametrize("fast_csv", [True, False], ids=["polars lane", "python lane"])
def test_a_header_naming_a_column_twice_fails_the_file(engine, tmp_path, fast_csv):
    """The last `level` silently won; now the file is not a units file, and nothing of it
    is stored."""
    path = tmp_path / "units_twice.csv"
    path.write_text("unit_id,level,name, level\nX1,team,Team X,force\n")

    [report] = ingest_files(Ingestor(engine, fast_csv=fast_csv), [path])

    assert report.outcome == "failed"
    assert report.message == "not a units file: column(s) named twice in the header: level"
    assert "X1" not in rows_of(engine, "units", "unit_id")


def test_the_cli_exits_2_naming_the_column_named_twice(database_url, tmp_path):
    path = tmp_path / "units_twice.csv"
    path.write_text("unit_id,level,name,name\nX1,team,Team X,Other\n")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", database_url, "init"]).exit_code == 0

    result = runner.invoke(main, ["--db", database_url, "ingest", str(path)])

    assert result.exit_code == 2, result.output
    assert "named twice in the header: name" in result.output
    assert "Traceback" not in result.output


def test_the_row_validator_refuses_a_header_naming_a_column_twice():
    spec = FEEDS["units"]
    with pytest.raises(ValueError, match="named twice in the header: level"):
        compile_validator(spec, ["unit_id", "level", "name", "level"])


# -- the pieces, without a database --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('{"a": ' + "1" * 5000 + "}", "integer too long"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1, "a": 2}', "key 'a' given twice"),
        ("[1, 2]", "not a JSON object: a list"),
        ('"text"', "not a JSON object: str"),
        ('{"a": 1', "not valid JSON: Expecting ',' delimiter"),
        ('{"a": "\\udc00"}', "unpaired surrogate"),
        ('{"\\ud800": 1}', "unpaired surrogate"),
    ],
)
def test_an_ndjson_line_that_is_not_one_json_object_says_why(line, reason):
    with pytest.raises(InvalidValue, match=reason.replace("[", r"\[")):
        parse_ndjson_line(line)


def test_an_ndjson_line_nested_within_reason_is_read():
    assert parse_ndjson_line('{"a": [[1]], "b": {"c": 1e3}}') == {"a": [[1]], "b": {"c": 1000.0}}
    assert parse_ndjson_line('{"a": "\\ud83d\\ude00 \\u00e9"}') == {"a": "\U0001f600 \u00e9"}


@pytest.mark.parametrize(
    "value", ["Infinity", float("inf"), float("nan"), "inf", "", 5, None, "9999-12-31T23:59:59Z"]
)
def test_a_watermark_must_be_a_time_in_range(value):
    with pytest.raises(InvalidValue):
        check_watermark(value)


def test_a_watermark_that_is_a_time_is_kept_as_sent():
    assert check_watermark(" 2025-06-30T10:00:00+01:00 ") == "2025-06-30T10:00:00+01:00"


def test_the_range_is_1900_to_2100():
    assert (date(1900, 1, 1), date(2100, 12, 31)) == (EARLIEST, LATEST)
    assert (LATEST - EARLIEST).days + 1 == field_kinds.DAYS_IN_RANGE


def test_the_polars_lanes_whitespace_is_all_python_strips():
    every = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert every == field_kinds.WHITESPACE
