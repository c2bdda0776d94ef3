"""The SQL source against a force's reporting database: a SQLite file and PostgreSQL."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.ingest.feeds import FEEDS, Reject, compile_validator, to_datetime
from integrations.base import SourceError, UnreadableRow
from integrations.sql import SqlSource, plain_value

COLUMNS = FEEDS["cc_incidents"].columns
START = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


@dataclass
class ForceDatabase:
    """The force's side: a `cad_export`-like table in a database of its own."""

    url: str
    table: sa.Table
    engine: sa.Engine

    @property
    def query(self) -> str:
        return (
            "SELECT log_no AS incident_urn, opened AS created_at, closing_code, grade, "
            f"updated_at FROM {self.table.name}"
        )

    def add(self, first: int, count: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.table.insert(),
                [
                    {
                        "log_no": f"INC-{n:04d}",
                        "opened": datetime(2025, 6, 1, 9, 0) + timedelta(minutes=n),
                        "closed": date(2025, 6, 2),
                        "closing_code": "SUDDEN_DEATH",
                        "grade": Decimal("2.5"),
                        "updated_at": START + timedelta(minutes=n),
                    }
                    for n in range(first, first + count)
                ],
            )


def cad_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("log_no", sa.String(20), primary_key=True),
        sa.Column("opened", sa.DateTime()),  # naive: the force's local time
        sa.Column("closed", sa.Date()),
        sa.Column("closing_code", sa.String(40)),
        sa.Column("grade", sa.Numeric(4, 1)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )


@pytest.fixture
def sqlite_force(tmp_path) -> Iterator[ForceDatabase]:
    url = f"sqlite:///{tmp_path / 'force_reporting.sqlite'}"
    yield from _force_database(url, cad_table("cad_export"))


@pytest.fixture
def postgres_force(postgres_url) -> Iterator[ForceDatabase]:
    yield from _force_database(postgres_url, cad_table(f"cad_export_{uuid.uuid4().hex[:10]}"))


def _force_database(url: str, table: sa.Table) -> Iterator[ForceDatabase]:
    engine = sa.create_engine(url)
    table.metadata.create_all(engine)
    try:
        yield ForceDatabase(url, table, engine)
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def force(request) -> ForceDatabase:
    return request.getfixturevalue(
        {"sqlite": "sqlite_force", "postgresql": "postgres_force"}[request.param]
    )


def urns(batches) -> list[str]:
    return [values[0] for batch in batches for _, values in batch.rows]


def test_all_rows_are_read_in_chunks(force):
    force.add(1, 25)
    query = force.query + " ORDER BY log_no"

    batches = list(
        SqlSource("cad", force.url, query, "cc_incidents", COLUMNS, chunk_size=10).batches()
    )

    assert [b.name for b in batches] == [
        "sql:cad rows 1-10",
        "sql:cad rows 11-20",
        "sql:cad rows 21-25",
    ]
    assert [n for b in batches for n, _ in b.rows] == list(range(1, 26))
    assert urns(batches) == [f"INC-{n:04d}" for n in range(1, 26)]
    # Only the feed's columns the query gives: ingest can tell what is missing.
    assert batches[0].columns == ("incident_urn", "created_at", "closing_code", "grade")
    assert {(b.feed, b.content_hash, b.source_key, b.watermark) for b in batches} == {
        ("cc_incidents", None, None, None)
    }


def test_rows_pass_the_feed_validator(force):
    force.add(1, 1)

    (batch,) = SqlSource("cad", force.url, force.query, "cc_incidents", COLUMNS).batches()

    validate = compile_validator(FEEDS["cc_incidents"], batch.columns)
    line, values = batch.rows[0]
    checked = validate(line, values)
    assert not isinstance(checked, Reject), checked
    # 09:01 naive is London summer time: 08:01 UTC.
    assert to_datetime(checked[COLUMNS.index("created_at")]) == datetime(
        2025, 6, 1, 8, 1, tzinfo=UTC
    )
    assert checked[COLUMNS.index("grade")] == "2.5"


def test_the_watermark_reads_only_newer_rows(force):
    force.add(1, 5)
    pull = SqlSource(
        "cad",
        force.url,
        force.query,
        "cc_incidents",
        COLUMNS,
        watermark_column="updated_at",
        chunk_size=2,
    )

    first = list(pull.batches())
    force.add(6, 3)
    since = first[-1].watermark
    second = list(
        SqlSource(
            "cad",
            force.url,
            force.query,
            "cc_incidents",
            COLUMNS,
            watermark_column="updated_at",
            since=since,
        ).batches()
    )

    assert urns(first) == [f"INC-{n:04d}" for n in range(1, 6)]
    assert [b.source_key for b in first] == ["cad"] * 3
    assert [_moment(b.watermark) for b in first] == [
        START + timedelta(minutes=n) for n in (2, 4, 5)
    ]
    assert urns(second) == ["INC-0006", "INC-0007", "INC-0008"]
    assert _moment(second[-1].watermark) == START + timedelta(minutes=8)


def test_nothing_new_keeps_the_watermark(force):
    force.add(1, 2)
    pull = SqlSource(
        "cad",
        force.url,
        force.query,
        "cc_incidents",
        COLUMNS,
        watermark_column="updated_at",
        since="2030-01-01 00:00:00",
    )

    assert list(pull.batches()) == []


def _moment(text: str | None) -> datetime:
    """A watermark as a UTC time: SQLite keeps what was stored (no offset), PostgreSQL adds one."""
    assert text is not None
    return _utc(datetime.fromisoformat(text))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.postgres
def test_native_values_become_text_the_validators_take(postgres_force):
    postgres_force.add(1, 1)
    columns = ("incident_urn", "created_at", "closed_on", "grade", "updated_at")
    query = (
        "SELECT log_no AS incident_urn, opened AS created_at, closed AS closed_on, grade, "
        f"updated_at FROM {postgres_force.table.name}"
    )

    (batch,) = SqlSource("cad", postgres_force.url, query, "cc_incidents", columns).batches()

    _, (urn, created_at, closed_on, grade, updated_at) = batch.rows[0]
    assert (urn, created_at, closed_on, grade) == (
        "INC-0001",
        "2025-06-01T09:01:00",
        "2025-06-02",
        "2.5",
    )
    aware = datetime.fromisoformat(updated_at)
    assert aware.tzinfo is not None
    assert aware == START + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (datetime(2025, 6, 1, 9, 1), "2025-06-01T09:01:00"),
        (
            datetime(2025, 6, 1, 9, 1, tzinfo=timezone(timedelta(hours=1))),
            "2025-06-01T09:01:00+01:00",
        ),
        (date(2025, 6, 2), "2025-06-02"),
        (Decimal("2.50"), "2.50"),
        (Decimal("1E+2"), "100"),
        ([Decimal("1"), "CHILD"], ["1", "CHILD"]),
        (memoryview(b"T1"), "T1"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (7, 7),
        (None, None),
    ],
)
def test_plain_value(value, plain):
    assert plain_value(value) == plain


@pytest.mark.parametrize(
    "column", ["updated_at; DROP TABLE cad_export", "q.updated_at", "1st", "updated at", ""]
)
def test_a_bad_watermark_column_is_rejected(sqlite_force, column):
    with pytest.raises(ValueError, match="watermark column"):
        SqlSource(
            "cad",
            sqlite_force.url,
            sqlite_force.query,
            "cc_incidents",
            COLUMNS,
            watermark_column=column,
        )


def test_an_unreachable_database_fails_without_the_password():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://feeder:pw-s3cret@127.0.0.1:{port}/force"

    with pytest.raises(SourceError) as raised:
        list(SqlSource("cad", url, "SELECT 1", "cc_incidents", COLUMNS).batches())

    message = str(raised.value)
    assert message.startswith(f"sql:cad (postgresql+psycopg://feeder:***@127.0.0.1:{port}/force)")
    assert "could not connect" in message
    assert "pw-s3cret" not in message


def test_a_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "typo.sqlite"

    with pytest.raises(SourceError, match="no database file"):
        list(SqlSource("cad", f"sqlite:///{path}", "SELECT 1", "cc_incidents", COLUMNS).batches())

    assert not path.exists()


def test_a_failing_query_names_the_source(force):
    query = "SELECT * FROM no_such_table"

    with pytest.raises(SourceError, match=r"^sql:cad .*the query failed"):
        list(SqlSource("cad", force.url, query, "cc_incidents", COLUMNS).batches())


def test_stopping_early_releases_the_database(force):
    force.add(1, 5)
    batches = SqlSource(
        "cad", force.url, force.query, "cc_incidents", COLUMNS, chunk_size=2
    ).batches()

    next(batches)
    batches.close()

    # A read left open would hold a lock that stops the table being dropped.
    with force.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
        force.table.drop(conn)
        force.table.create(conn)


def test_a_sentinel_watermark_rejects_its_row_and_never_moves_the_watermark(tmp_path):
    url = f"sqlite:///{tmp_path / 'force.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE x (incident_urn TEXT, created_at TEXT, updated_at)")
        conn.exec_driver_sql(
            "INSERT INTO x VALUES ('A', '2025-06-01T09:00:00Z', '2025-06-01T10:00:00Z'), "
            "('B', '2025-06-01T09:00:00Z', '9999-12-31T23:59:59Z'), "
            "('C', '2025-06-01T09:00:00Z', 9e999), ('D', '2025-06-01T09:00:00Z', 'v-17'), "
            "('E', '2025-06-01T09:00:00Z', 12)"
        )
    engine.dispose()
    query = "SELECT incident_urn, created_at, updated_at FROM x"

    (batch,) = SqlSource(
        "cad", url, query, "cc_incidents", COLUMNS, watermark_column="updated_at"
    ).batches()

    rejected = {
        row.raw.split("'incident_urn': '")[1][0]: row.reason
        for _, row in batch.rows
        if isinstance(row, UnreadableRow)
    }
    # SQLite orders numbers before text: the first kind read is the watermark's kind.
    assert rejected == {
        "A": "updated_at: the watermark '2025-06-01T10:00:00Z' is not of the kind the others "
        "are (int)",
        "B": "updated_at: the watermark 9999-12-31T23:59:59Z is out of range (a time from 1900 "
        "to 2100)",
        "C": "updated_at: the watermark inf is not a finite number",
        "D": "updated_at: the watermark 'v-17' is not of the kind the others are (int)",
    }
    assert len(batch.rows) == 5
    assert batch.watermark == "12"
