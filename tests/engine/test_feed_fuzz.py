"""Generated rows for every feed (issue 15 section 5): whatever a row holds, no exception
escapes, each row is stored exactly as the Python validator reads it or rejected with its
line, and the polars lane (as text for SQLite, typed for PostgreSQL's binary COPY), the
Python lane and NDJSON agree.

Example counts are small so the whole file runs in well under half a minute; a failure
prints the row that caused it."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.ingest import csv_columns as csvlane
from engine.ingest.batches import Ingestor
from engine.ingest.feeds import FEEDS, Feed, Reject, compile_validator, parse_ndjson_line
from engine.ingest.field_kinds import Code, Enum
from engine.ingest.files import ingest_files
from integrations.base import UnreadableRow, rows_from_records
from models import FEED_TABLES, HeldRow, QuarantinedRow, table_of
from models.db import make_engine, migrate
from tests.feedfiles import SAMPLE_ROWS, write_csv

# No shrinking: on this shared machine shrinking a polars example can take minutes, and
# the failing example is printed as drawn.
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Characters that matter to some reader: whitespace Python strips and polars might not, a
# NUL, the list separator, quotes and line ends for the CSV writer, another script's digits.
AWKWARD = " \t\r\n\x00\x1c\x1f\x85\xa0\u2028\u3000|,\"'\u0661\u00e9Z-:T."
CHARACTERS = st.characters(blacklist_categories=("Cs",))
TEXT = st.text(st.sampled_from(AWKWARD) | st.sampled_from("AZaz09_/") | CHARACTERS, max_size=8)


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    space = st.sampled_from(["", "", " ", "\t", "\u3000", "\x1f", "\n"])
    return st.tuples(space, values, space).map("".join)


def _moments() -> st.SearchStrategy[str]:
    when = st.datetimes(datetime(1890, 1, 1), datetime(2110, 12, 31))
    offset = st.sampled_from(["Z", "Z", "", "+01:00", "-14:00", "+14:00", ".25Z", "+00:00"])
    sep = st.sampled_from(["T", "T", " "])
    plain = st.builds(lambda t, s, o: t.strftime(f"%Y-%m-%d{s}%H:%M:%S") + o, when, sep, offset)
    edges = st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "2024-02-30T10:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T10:00:60Z",
            "2024-W09-5T14:05:00Z",
            "20240301T140500Z",
            "2024-03-01",
            "1900-01-01T00:00:00Z",
            "2100-12-31T23:59:59Z",
            "2101-01-01T00:00:00Z",
            "\u0662024-03-01T10:00:00Z",
        ]
    )
    return plain | edges


def _days() -> st.SearchStrategy[str]:
    day = st.dates(datetime(1890, 1, 1).date(), datetime(2110, 12, 31).date()).map(str)
    edges = st.sampled_from(
        ["2024-02-30", "0001-01-01", "9999-12-31", "20240301", "2024-W09-5", "1899-12-31"]
    )
    return day | edges


def _numbers() -> st.SearchStrategy[str]:
    return (
        st.integers(-10, 80_000).map(str)
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
        | st.decimals(places=3, allow_nan=False, allow_infinity=False).map(str)
        | st.integers(1, 400).map(lambda n: "9" * n)
        | st.sampled_from(["1e308", "-0", "0.5", "1_0", "\u0661\u0662", "nan", "inf", "12."])
    )


def values_for(f) -> st.SearchStrategy[str]:
    """A CSV cell for field `f`: often a value of its kind, sometimes anything."""
    kind = f.reads
    if isinstance(kind, Enum):
        typical = st.sampled_from(kind.choices)
    elif isinstance(kind, Code):
        typical = st.from_regex(kind.pattern, fullmatch=True)
    elif f.kind == "datetime":
        typical = _moments()
    elif f.kind == "date":
        typical = _days()
    elif f.kind == "number":
        typical = _numbers()
    elif f.kind == "list":
        typical = st.lists(TEXT, max_size=3).map("|".join)
    else:
        typical = st.sampled_from(["S1", "S2", "T1", "F", "X"]) | TEXT
    return padded(typical) | st.just("") | TEXT


def rows_for(spec: Feed) -> st.SearchStrategy[list[dict[str, str]]]:
    row = st.fixed_dictionaries({f.name: values_for(f) for f in spec.fields})
    # Few distinct keys, so that repeats (the latest wins) happen.
    keyed = st.tuples(row, st.sampled_from(["K1", "K2", "K3"])).map(
        lambda pair: {**pair[0], spec.key[0]: pair[1]} if pair[1] != "K3" else pair[0]
    )
    return st.lists(keyed, min_size=1, max_size=6)


def csv_bytes(spec: Feed, rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spec.columns)
    writer.writerows([row[c] for c in spec.columns] for row in rows)
    return out.getvalue().encode()


def python_lane(spec: Feed, data: bytes, known: set[str] | None):
    """What the Python lane makes of a CSV file: rejects, rows to store, held keys, and
    duplicates, as engine.ingest.rows does it (the latest row for a key wins)."""
    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    header = [h.strip() for h in next(reader)]
    validate = compile_validator(spec, header)
    rejects, latest = [], {}
    duplicates = 0
    for values in reader:
        if not values:
            continue
        result = validate(reader.line_num, values)
        if isinstance(result, Reject):
            rejects.append(result)
            continue
        assert isinstance(result, tuple) and len(result) == len(spec.columns)
        key = spec.key_of(result)
        if key in latest:
            duplicates += 1
            del latest[key]
        latest[key] = result
    person = spec.columns.index(spec.person_field) if spec.person_field else None
    stored = [r for r in latest.values() if person is None or r[person] in known]
    held = [k for k, r in latest.items() if person is not None and r[person] not in known]
    return rejects, stored, held, duplicates


def as_reported(rejects: list[Reject]) -> list[tuple]:
    return [(r.line, r.field, r.reason) for r in rejects]


@pytest.mark.parametrize("feed", list(FEEDS))
@FUZZ
@given(data=st.data())
def test_the_polars_lane_agrees_with_the_python_validator(feed, data):
    spec = FEEDS[feed]
    rows = data.draw(rows_for(spec), label="rows")
    raw = csv_bytes(spec, rows)
    known = {"S1", "S2", "K1"}

    rejects, stored, held, duplicates = python_lane(spec, raw, known)
    for reject in rejects:
        assert reject.line >= 2  # the header is line 1
        assert reject.reason.startswith(f"{reject.field}: ") or reject.field is None

    frame = csvlane._frame(raw, spec.columns)
    if frame is None:  # declined (a value spanning lines, a lone CR): the Python lane reads it
        return
    for typed in (False, True):
        summary, lane_rows = csvlane._settle(frame, spec, spec.columns, known, typed)
        if typed:
            lane_rows = lane_rows.with_columns(f.reads.untyped(pl.col(f.name)) for f in spec.fields)
        assert as_reported([r for r, _ in summary.rejects]) == as_reported(rejects)
        assert lane_rows.rows() == stored
        assert [tuple(json.loads(key)) for _, key, _, _ in summary.held] == held
        assert summary.duplicates == duplicates


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**50), max_value=10**50)
    | st.floats()
    | TEXT
    | st.text(st.characters(), max_size=3),  # unpaired surrogates too
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize("feed", list(FEEDS))
@FUZZ
@given(data=st.data())
def test_ndjson_rows_are_read_as_csv_rows_are_or_rejected_with_their_line(feed, data):
    """Text values as JSON strings read exactly as the same CSV cells; any other JSON value
    (numbers, booleans, lists, objects, NaN) is a value or a rejected row, never an error."""
    spec = FEEDS[feed]
    rows = data.draw(rows_for(spec), label="rows")
    others = data.draw(
        st.lists(st.dictionaries(st.sampled_from(spec.columns), JSON_VALUES), max_size=4),
        label="json rows",
    )
    validate = compile_validator(spec, spec.columns)

    def read(lines: list[str]) -> list:
        results = []
        for number, text in enumerate(lines, start=1):
            try:
                record = parse_ndjson_line(text)
            except ValueError as error:  # InvalidValue: the line is a rejected row
                results.append(Reject(number, None, str(error)))
                continue
            for line, values in rows_from_records([record], spec.columns, first=number):
                assert not isinstance(values, UnreadableRow)
                results.append(validate(line, values))
        return results

    as_strings = read([json.dumps(row) for row in rows])
    reader = csv.reader(io.StringIO(csv_bytes(spec, rows).decode(), newline=""))
    next(reader)
    as_csv = [validate(n, values) for n, values in enumerate(reader, start=1) if values]
    if len(as_csv) == len(rows):  # no cell held a line break that csv read as a blank line
        assert [_comparable(r) for r in as_strings] == [_comparable(r) for r in as_csv]

    lines = [json.dumps(row, allow_nan=True) for row in others]
    for number, result in enumerate(read(lines), start=1):
        if isinstance(result, Reject):
            assert result.line == number
        else:
            assert len(result) == len(spec.columns)
            for f, value in zip(spec.fields, result, strict=True):
                assert value is None or isinstance(value, float if f.kind == "number" else str)
                if isinstance(value, str):
                    assert value and "\x00" not in value and value == value.strip()
                    value.encode()  # storable: no unpaired surrogate


def _comparable(result):
    return (result.field, result.reason) if isinstance(result, Reject) else result


# -- stored exactly as read, on both databases ---------------------------------------------


@pytest.fixture
def template(database_url, tmp_path):
    """A migrated database holding the sample people, and a function that takes it back
    to that state (between examples)."""
    engine = make_engine(database_url)
    migrate(engine)
    people = write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"])
    list(ingest_files(Ingestor(engine, fast_csv=False), [people]))
    metadata = sa.MetaData()
    metadata.reflect(engine)
    runs = metadata.tables["ingest_runs"]
    with engine.connect() as conn:
        first_runs = conn.execute(sa.select(runs.c.id)).scalars().all()
    keep = {"people", "alembic_version", "ingest_runs"}
    tables = [t for t in reversed(metadata.sorted_tables) if t.name not in keep]

    def reset():
        with engine.begin() as conn:
            for table in tables:
                conn.execute(table.delete())
            conn.execute(runs.delete().where(runs.c.id.not_in(first_runs)))

    yield engine, reset
    engine.dispose()


@pytest.mark.parametrize("fast_csv", [True, False], ids=["polars lane", "python lane"])
@settings(
    max_examples=12,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_row_is_stored_as_read_or_rejected_with_its_line(
    template, tmp_path_factory, fast_csv, data
):
    engine, reset = template
    feed = data.draw(st.sampled_from([f for f in FEEDS if f not in ("people", "units")]))
    spec = FEEDS[feed]
    rows = data.draw(rows_for(spec), label="rows")
    raw = csv_bytes(spec, rows)
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"{feed}_fuzz.csv"
    path.write_bytes(raw)
    rejects, stored, held, _ = python_lane(spec, raw, {"S1", "S2"})
    reset()

    [report] = ingest_files(Ingestor(engine, fast_csv=fast_csv), [path])

    assert report.outcome == "ok", report.message
    assert as_reported(report.rejects) == as_reported(rejects)
    table = table_of(FEED_TABLES[feed])
    columns = [table.c[c] for c in spec.columns]
    with engine.connect() as conn:
        in_database = [tuple(r) for r in conn.execute(sa.select(*columns))]
        quarantined = conn.execute(sa.select(table_of(QuarantinedRow).c.line)).scalars().all()
        held_keys = conn.execute(sa.select(table_of(HeldRow).c.row_key)).scalars().all()
    assert sorted(map(_stored, in_database)) == sorted(_expected(spec, r) for r in stored)
    assert sorted(quarantined) == sorted(r.line for r in rejects)
    assert sorted(tuple(json.loads(k)) for k in held_keys) == sorted(held)
    shutil.rmtree(folder)


def _expected(spec: Feed, row: tuple) -> tuple:
    """The Python validator's values as the database gives them back."""
    out = []
    for f, value in zip(spec.fields, row, strict=True):
        if value is not None and f.kind == "datetime":
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        elif value is not None and f.kind == "date":
            value = datetime.fromisoformat(value).date()
        out.append(value)
    return tuple(out)


def _stored(row: tuple) -> tuple:
    # SQLite gives naive UTC datetimes back; PostgreSQL aware ones.
    return tuple(
        v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in row
    )
