"""Ingest on both databases: every feed, every bad-input class, idempotency, holds, folders."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.ingest.batches import Ingestor
from engine.ingest.csv_columns import stage_csv
from engine.ingest.feeds import FEEDS
from engine.ingest.files import ingest_files
from integrations.base import Batch, FeedFormatError, rows_from_records
from integrations.files import read_file
from models import FEED_TABLES, IngestRun, QuarantinedRow, table_of
from models.db import make_engine, migrate
from tests.feedfiles import SAMPLE_ROWS, database_state, write_csv, write_force, write_ndjson


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


LANES = {
    "polars lane": {},
    "python lane": {"fast_csv": False},
    # SQLite: each file checked and staged in another process, then moved in from there;
    # PostgreSQL: files of different feeds stored side by side.
    "prepared ahead": {"jobs": 2, "prepare_ahead": True},
}


@pytest.fixture(params=list(LANES))
def lane(request):
    """The ways a CSV file goes in (ingest options); all must store the same."""
    return LANES[request.param]


def ingest(engine, *paths, fast_csv=True, **options):
    return list(ingest_files(Ingestor(engine, fast_csv=fast_csv), list(paths), **options))


def rows_of(engine, feed):
    table = table_of(FEED_TABLES[feed])
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_every_feed_goes_in(engine, tmp_path, fmt, lane):
    reports = ingest(engine, *write_force(tmp_path, fmt), **lane)

    assert [r.feed for r in reports] == list(FEEDS)  # dependency order, whatever the names
    for report in reports:
        assert (report.outcome, report.accepted, report.rejected, report.held) == ("ok", 2, 0, 0)
    incidents = {r["incident_urn"]: r for r in rows_of(engine, "cc_incidents")}
    assert incidents["INC-1"]["qualifiers"] == "CHILD|FIREARM"
    assert incidents["INC-1"]["closed_at"] == datetime(2025, 1, 2, 12, 30, tzinfo=UTC)
    # No offset means Europe/London local time: 23:30 BST is 22:30 UTC.
    assert incidents["INC-2"]["created_at"] == datetime(2025, 7, 1, 22, 30, tzinfo=UTC)
    people = {r["staff_id"]: r for r in rows_of(engine, "people")}
    assert people["S1"]["service_start"] == date(2015, 4, 1)
    assert people["S2"]["supervisor_id"] is None
    absences = {r["spell_id"]: r for r in rows_of(engine, "absences")}
    assert absences["AB-1"]["working_days_lost"] == 5.0
    assert absences["AB-2"]["end_date"] is None
    rest_days = {r["cancellation_id"]: r for r in rows_of(engine, "rest_day_cancellations")}
    assert rest_days["RDC-2"]["status"] == "cancelled"  # the contract's default


BAD_ROWS = [
    ("cc_incidents", {"created_at": ""}, "created_at", "required field is empty"),
    ("cc_incidents", {"created_at": "2025-13-45T10:00:00Z"}, "created_at", "not an ISO 8601"),
    ("cc_incidents", {"created_at": "2025-01-02"}, "created_at", "no time"),
    ("cc_incidents", {"created_at": "0000-01-01T00:00:00Z"}, "created_at", "not an ISO 8601"),
    ("cc_incidents", {"created_at": "2024-12-31T23:59:60Z"}, "created_at", "not an ISO 8601"),
    ("cc_incidents", {"closing_code": "sudden death"}, "closing_code", "unknown closing code"),
    ("rms_occurrences", {"hocr_code": "murder"}, "hocr_code", "unknown Home Office crime code"),
    ("rms_occurrences", {"iioc_category": "D"}, "iioc_category", "unknown value 'D'"),
    ("cc_deployments", {"role": "boss"}, "role", "unknown value 'boss'"),
    ("people", {"service_start": "31/12/2024"}, "service_start", "not a date"),
    ("people", {"service_start": "0000-01-01"}, "service_start", "not a date"),
    ("absences", {"working_days_lost": "lots"}, "working_days_lost", "not a number"),
    ("rest_day_cancellations", {"status": "maybe"}, "status", "unknown value 'maybe'"),
]


@pytest.mark.parametrize(("feed", "change", "field", "reason"), BAD_ROWS)
def test_a_bad_row_is_quarantined_with_its_line_and_the_rest_goes_in(
    engine, tmp_path, lane, feed, change, field, reason
):
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, other = SAMPLE_ROWS[feed]
    bad = {**other, **change}
    extra = {**good, **{k: v + "-3" for k, v in good.items() if k in FEEDS[feed].key[:1]}}
    path = write_csv(tmp_path / f"{feed}_new.csv", [good, bad, extra])

    [report] = ingest(engine, path, **lane)

    assert report.outcome == "ok"
    assert [(r.line, r.field) for r in report.rejects] == [(3, field)]
    assert reason in report.rejects[0].reason
    assert report.rejected == 1
    assert report.accepted + report.unchanged == 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(table_of(QuarantinedRow))).one()
    assert (stored.source, stored.line, stored.field) == (str(path), 3, field)
    assert json.loads(stored.raw)[field] == bad[field]


def test_a_row_with_more_values_than_the_header_is_quarantined(engine, tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("unit_id,parent_id,level,name\nF,,force,Force\nT1,F,team,Team,extra\n")
    [report] = ingest(engine, path)
    assert [(r.line, r.reason) for r in report.rejects] == [
        (3, "5 values but the header has 4 columns")
    ]
    assert report.accepted == 1


def test_ndjson_line_that_is_not_json_is_quarantined(engine, tmp_path):
    path = write_ndjson(tmp_path / "units.ndjson", SAMPLE_ROWS["units"])
    with path.open("a") as handle:
        handle.write('{"unit_id": "T2", "level": "team"\n["a list"]\n')
    [report] = ingest(engine, path)
    assert [(r.line, r.reason[:18]) for r in report.rejects] == [
        (3, "not valid JSON: Ex"),
        (4, "not a JSON object:"),
    ]
    assert report.accepted == 2


def test_a_truncated_last_line_loses_only_that_row(engine, tmp_path, lane):
    path = write_csv(tmp_path / "cc_incidents.csv", SAMPLE_ROWS["cc_incidents"])
    path.write_text(path.read_text() + "INC-3,2025-01-0")
    [report] = ingest(engine, path, **lane)
    assert [(r.line, r.field) for r in report.rejects] == [(4, "created_at")]
    assert report.accepted == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "cc_incidents_x.csv",
            "incident_urn,closing_code\nINC-9,ASB\n",
            "not a cc_incidents file: missing required column(s) created_at",
        ),
        ("cc_incidents_y.csv", "", "empty file"),
        ("units.csv", "just one line of prose\n", "not a CSV header row"),
        ("mystery.csv", "a,b\n1,2\n", "the file name does not name a feed"),
    ],
)
def test_a_file_that_is_not_the_feed_fails_whole(engine, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    [report] = ingest(engine, path)
    assert report.outcome == "failed"
    assert message in report.message
    with engine.connect() as conn:
        run = conn.execute(sa.select(table_of(IngestRun))).one()
    assert (run.source, run.outcome) == (str(path), "failed")
    assert message in run.message
    assert all(not rows for rows in database_state(engine).values())


def test_a_binary_file_fails_whole(engine, tmp_path):
    path = tmp_path / "people_export.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe")
    [report] = ingest(engine, path)
    assert report.outcome == "failed"
    assert "not UTF-8 text" in report.message


def test_feed_option_overrides_the_file_name(engine, tmp_path):
    path = write_csv(tmp_path / "export-42.csv", SAMPLE_ROWS["units"])
    [report] = ingest(engine, path, feed="units")
    assert (report.feed, report.accepted) == ("units", 2)


def test_three_ingests_give_the_same_state(engine, tmp_path, lane):
    files = write_force(tmp_path / "a")
    ingest(engine, *files, **lane)
    first = database_state(engine)
    # The same file again is a no-op; the same rows in a new file are all unchanged.
    again = ingest(engine, *files, **lane)
    assert {r.outcome for r in again} == {"duplicate"}
    copies = write_force(tmp_path / "b")
    for path in copies:
        path.write_text(path.read_text() + "\n")  # new bytes, same rows
    third = ingest(engine, *copies, **lane)
    assert {(r.outcome, r.accepted, r.unchanged) for r in third} == {("ok", 0, 2)}
    assert database_state(engine) == first


def test_the_same_key_with_new_values_updates_the_record(engine, tmp_path, lane):
    ingest(engine, write_csv(tmp_path / "cc_incidents_1.csv", SAMPLE_ROWS["cc_incidents"]), **lane)
    first, second = SAMPLE_ROWS["cc_incidents"]
    recoded = [first, {**second, "closing_code": "SUDDEN_DEATH"}]
    [report] = ingest(engine, write_csv(tmp_path / "cc_incidents_2.csv", recoded), **lane)
    assert (report.accepted, report.unchanged) == (1, 1)
    codes = {r["incident_urn"]: r["closing_code"] for r in rows_of(engine, "cc_incidents")}
    assert codes == {"INC-1": "SUDDEN_DEATH", "INC-2": "SUDDEN_DEATH"}


def test_duplicate_rows_in_one_file_count_once_and_the_latest_wins(engine, tmp_path, lane):
    first, second = SAMPLE_ROWS["cc_incidents"]
    rows = [first, second, first, {**second, "closing_code": "DOMESTIC"}]
    [report] = ingest(engine, write_csv(tmp_path / "cc_incidents.csv", rows), **lane)
    assert (report.accepted, report.duplicates) == (2, 2)
    codes = {r["incident_urn"]: r["closing_code"] for r in rows_of(engine, "cc_incidents")}
    assert codes == {"INC-1": "SUDDEN_DEATH", "INC-2": "DOMESTIC"}


def test_a_value_with_a_line_break_goes_in_whole(engine, tmp_path, lane):
    """polars declines a file whose records span lines (its line numbers would be wrong):
    the row-by-row lane reads it, in this process, however the files were being prepared."""
    first, second = SAMPLE_ROWS["cc_incidents"]
    path = write_csv(tmp_path / "cc_incidents.csv", [first, {**second, "unit_id": "T1\nnorth"}])
    [report] = ingest(engine, path, **lane)
    assert (report.accepted, report.rejected) == (2, 0)
    units = {r["incident_urn"]: r["unit_id"] for r in rows_of(engine, "cc_incidents")}
    assert units == {"INC-1": "T1", "INC-2": "T1\nnorth"}


def test_rows_for_unknown_people_are_held_then_linked_when_they_arrive(engine, tmp_path, lane):
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"][1:]), **lane)
    [report] = ingest(
        engine, write_csv(tmp_path / "cc_deployments.csv", SAMPLE_ROWS["cc_deployments"]), **lane
    )
    assert (report.accepted, report.held) == (1, 1)
    assert {r["staff_id"] for r in rows_of(engine, "cc_deployments")} == {"S2"}

    [arrival] = ingest(
        engine, write_csv(tmp_path / "people_2.csv", SAMPLE_ROWS["people"][:1]), **lane
    )

    assert arrival.linked == 1
    assert {r["staff_id"] for r in rows_of(engine, "cc_deployments")} == {"S1", "S2"}
    assert database_state(engine)["held"][0][-1] is False  # linked, kept for the record


@pytest.mark.parametrize(
    ("newline", "blank", "all_empty_row"),
    [("\n", "\n", True), ("\r\n", "\r\n", False), ("\n", "\r\n", False)],
    ids=["LF", "CRLF", "a CRLF blank line in an LF file"],
)
def test_blank_lines_are_skipped_and_later_lines_keep_their_numbers(
    engine, tmp_path, lane, newline, blank, all_empty_row
):
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, other = SAMPLE_ROWS["cc_incidents"]
    # Line 5 has every value empty, which is not a blank line; or a good row.
    fifth = ",,,,,,," if all_empty_row else ",".join({**good, "incident_urn": "INC-5"}.values())
    text = (
        newline.join([",".join(good), ",".join(good.values())])
        + newline
        + blank  # line 3
        + newline.join(
            [
                ",".join({**other, "created_at": "soon"}.values()),  # line 4
                fifth,
                ",".join({**other, "incident_urn": "INC-3"}.values()),
            ]
        )
        + newline
        + blank
    )
    path = tmp_path / "cc_incidents_blank.csv"
    path.write_bytes(text.encode())

    [report] = ingest(engine, path, **lane)

    assert report.outcome == "ok"
    rejects = [(4, "created_at"), (5, "incident_urn")] if all_empty_row else [(4, "created_at")]
    assert [(r.line, r.field) for r in report.rejects] == rejects
    assert report.rows == 4
    assert report.accepted + report.unchanged == (2 if all_empty_row else 3)
    assert "INC-3" in {r["incident_urn"] for r in rows_of(engine, "cc_incidents")}


def test_other_iso_8601_forms_are_read_as_python_reads_them(engine, tmp_path, lane):
    """A week date or the basic form is not the plain UTC form, though as long: the polars
    lane leaves it to the Python validator, which must not slice it as if it were."""
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, _ = SAMPLE_ROWS["cc_incidents"]
    rows = [
        {**good, "incident_urn": "WEEK", "created_at": "2024-W09-5T14:05:00Z"},
        {**good, "incident_urn": "BASIC", "created_at": "20240301T140500.123Z"},
        {**good, "incident_urn": "SPACE", "created_at": "2024-03-01 14:05:00Z"},
    ]

    [report] = ingest(engine, write_csv(tmp_path / "cc_incidents_iso.csv", rows), **lane)

    assert (report.accepted, report.rejected) == (3, 0)
    created = {r["incident_urn"]: r["created_at"] for r in rows_of(engine, "cc_incidents")}
    assert created["WEEK"] == created["SPACE"] == datetime(2024, 3, 1, 14, 5, tzinfo=UTC)
    assert created["BASIC"] == datetime(2024, 3, 1, 14, 5, 0, 123000, tzinfo=UTC)


def test_values_only_python_reads_are_stored_as_python_stores_them(engine, tmp_path, lane):
    """Digits of another script, whitespace Python strips and polars would not, and a list
    with nothing in it: the polars lane leaves these to the Python validator, or agrees."""
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, other = SAMPLE_ROWS["cc_incidents"]
    incidents = [
        {**good, "unit_id": "T1\x1f", "qualifiers": "|"},
        {**other, "unit_id": "\u3000T1", "qualifiers": " CHILD | "},
    ]
    absence, _ = SAMPLE_ROWS["absences"]

    reports = ingest(
        engine,
        write_csv(tmp_path / "cc_incidents_odd.csv", incidents),
        write_csv(
            tmp_path / "absences_odd.csv", [{**absence, "working_days_lost": "\u0661\u0662"}]
        ),
        **lane,
    )

    assert [(r.outcome, r.rejected) for r in reports] == [("ok", 0), ("ok", 0)]
    stored = {r["incident_urn"]: r for r in rows_of(engine, "cc_incidents")}
    assert [(r["unit_id"], r["qualifiers"]) for r in stored.values()] == [
        ("T1", None),
        ("T1", "CHILD"),
    ]
    [days] = [
        r["working_days_lost"] for r in rows_of(engine, "absences") if r["spell_id"] == "AB-1"
    ]
    assert days == 12.0


def test_a_header_named_like_the_lanes_own_columns_changes_nothing(engine, tmp_path, lane):
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, other = SAMPLE_ROWS["cc_incidents"]
    extra = {"__parsed created_at": "kept", "__text unit_id": " as sent ", "__line": "7"}
    rows = [{**good, **extra}, {**other, **extra, "created_at": "soon"}]

    [report] = ingest(engine, write_csv(tmp_path / "cc_incidents_extra.csv", rows), **lane)

    assert [(r.line, r.field) for r in report.rejects] == [(3, "created_at")]
    with engine.connect() as conn:
        raw = json.loads(conn.execute(sa.select(table_of(QuarantinedRow).c.raw)).scalar_one())
    assert {k: raw[k] for k in extra} == extra


def test_a_lone_carriage_return_ends_a_line_as_it_does_for_csv(engine, tmp_path, lane):
    ingest(engine, *write_force(tmp_path / "base"), **lane)
    good, other = SAMPLE_ROWS["cc_incidents"]
    lines = [",".join(good), ",".join(good.values())]
    bad = ",".join({**other, "created_at": "soon"}.values())
    path = tmp_path / "cc_incidents_cr.csv"
    # Line 2 ends with a lone CR, then CRLF: the csv module counts a blank line 3.
    path.write_bytes(("\r\n".join(lines) + "\r\r\n" + bad + "\r\n").encode())

    [report] = ingest(engine, path, **lane)

    assert [(r.line, r.field) for r in report.rejects] == [(4, "created_at")]


def test_times_in_keys_and_rescued_rows_are_stored_alike_in_every_lane(engine, tmp_path, lane):
    """The polars lane sends PostgreSQL typed times; a held row's key and a row the Python
    validator had to read (a local time, a fraction of a second) still come out as they do
    from the Python lane."""
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"][:1]), **lane)
    known, _ = SAMPLE_ROWS["rms_involvements"]
    rows = [
        known,
        {**known, "role": "investigator", "assigned_at": "2025-07-01T10:15:30.25+01:00"},
        {**known, "role": "attending", "assigned_at": "2025-07-01 23:30"},  # London, BST
        {**known, "staff_id": "S9", "assigned_at": "2025-01-03T08:00:00Z"},
        {**known, "staff_id": "S9", "role": "other", "assigned_at": "2025-01-03T09:00:00"},
        # The first row's key again, in a form only the Python validator reads: it wins.
        {**known, "assigned_at": "2025-01-02T11:05:00+00:00", "unassigned_at": "2025-01-05T00:00Z"},
        # A key first in a form only Python reads, then plain: the later, plain row wins.
        {**known, "role": "interviewer", "assigned_at": "2025-02-01T10:00:00+00:00"},
        {
            **known,
            "role": "interviewer",
            "assigned_at": "2025-02-01T10:00:00Z",
            "unassigned_at": "2025-02-02T10:00:00Z",
        },
    ]

    [report] = ingest(engine, write_csv(tmp_path / "rms_involvements.csv", rows), **lane)

    assert (report.accepted, report.held, report.rejected, report.duplicates) == (4, 2, 0, 2)
    stored = {r["role"]: r["assigned_at"] for r in rows_of(engine, "rms_involvements")}
    unassigned = {r["role"]: r["unassigned_at"] for r in rows_of(engine, "rms_involvements")}
    assert unassigned["oic"] == datetime(2025, 1, 5, tzinfo=UTC)
    assert unassigned["interviewer"] == datetime(2025, 2, 2, 10, tzinfo=UTC)
    del stored["interviewer"]
    assert stored == {
        "oic": datetime(2025, 1, 2, 11, 5, tzinfo=UTC),
        "investigator": datetime(2025, 7, 1, 9, 15, 30, 250000, tzinfo=UTC),
        "attending": datetime(2025, 7, 1, 22, 30, tzinfo=UTC),
    }
    held = sorted(r[1] for r in database_state(engine)["held"])
    assert [json.loads(key) for key in held] == [
        ["OCC-1", "S9", "oic", "2025-01-03 08:00:00.000000"],
        ["OCC-1", "S9", "other", "2025-01-03 09:00:00.000000"],  # GMT in January
    ]


def test_a_file_staged_before_its_people_arrived_is_prepared_again(tmp_path):
    """A file another process prepared while a person was unknown would hold their rows;
    if the person is stored by the time the file is, it is prepared afresh instead."""
    engine = make_engine(f"sqlite:///{tmp_path / 'staged.sqlite'}")
    migrate(engine)
    path = write_csv(tmp_path / "cc_deployments.csv", SAMPLE_ROWS["cc_deployments"])
    batch, _ = read_file(path, feed="cc_deployments")
    staged = stage_csv(
        str(path), "cc_deployments", batch.columns, frozenset(), str(tmp_path / "stage.sqlite")
    )
    assert (staged.count, len(staged.summary.held)) == (0, 2)
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"]))

    report = Ingestor(engine).ingest(batch, prepared=staged)

    assert (report.accepted, report.held) == (2, 0)
    assert {r["staff_id"] for r in rows_of(engine, "cc_deployments")} == {"S1", "S2"}
    engine.dispose()


def test_drop_folder_moves_files_and_explains_failures(engine, tmp_path):
    drop = tmp_path / "drop"
    write_force(drop)
    (drop / "cc_incidents_broken.csv").write_text("incident_urn,grade\nINC-1,1\n")
    reports = ingest(engine, drop, move=True, settle_seconds=0)
    assert sum(r.outcome == "failed" for r in reports) == 1
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == []
    assert len(list((drop / "processed").iterdir())) == len(FEEDS)
    reason = (drop / "failed" / "cc_incidents_broken.csv.reason.txt").read_text()
    assert "missing required column(s) created_at" in reason


def test_a_watermark_is_saved_with_its_batch(engine):
    columns = FEEDS["units"].columns
    batch = Batch(
        name="https://hr.example/units page 1",
        feed="units",
        columns=columns,
        rows=rows_from_records(SAMPLE_ROWS["units"], columns),
        source_key="hr",
        watermark="2025-01-02T00:00:00Z",
    )
    Ingestor(engine).ingest(batch)
    from engine.ingest.batches import watermark_for

    assert watermark_for(engine, "hr") == "2025-01-02T00:00:00Z"
    assert watermark_for(engine, "other") is None


def test_an_error_mid_batch_stores_nothing(engine):
    columns = FEEDS["units"].columns

    def rows():
        yield from rows_from_records(SAMPLE_ROWS["units"], columns)
        raise FeedFormatError("units.csv", "line 3: unexpected end of data")

    batch = Batch(name="units.csv", feed="units", columns=columns, rows=rows())
    with pytest.raises(FeedFormatError):
        Ingestor(engine).ingest(batch)
    assert rows_of(engine, "units") == []


def test_progress_is_reported_per_batch(engine, tmp_path):
    seen = []
    path = write_csv(tmp_path / "units.csv", SAMPLE_ROWS["units"])
    list(ingest_files(Ingestor(engine, progress=lambda n, rows: seen.append((n, rows))), [path]))
    assert seen[-1] == (str(path), 2)


def test_chunks_sharing_a_key_prefix_and_stored_keys_are_merged_right(
    engine, tmp_path, lane, monkeypatch
):
    """Deployments of one incident spread over several chunks are all new; a second file
    with one changed and one new row among stored ones updates exactly those."""
    monkeypatch.setattr("engine.ingest.batches.CHUNK_ROWS", 2)
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"]), **lane)
    template = SAMPLE_ROWS["cc_deployments"][0]
    roles = ["first_on_scene", "attending", "supervisor", "other", "dispatcher"]
    rows = [
        {**template, "staff_id": staff, "role": role} for staff in ("S1", "S2") for role in roles
    ]
    [first] = ingest(engine, write_csv(tmp_path / "cc_deployments_1.csv", rows), **lane)
    assert (first.accepted, first.unchanged) == (10, 0)

    changed = [dict(row) for row in rows]
    changed[3]["cleared_at"] = "2025-01-02T13:00:00Z"
    changed.append({**template, "incident_urn": "INC-2", "staff_id": "S1"})
    [second] = ingest(engine, write_csv(tmp_path / "cc_deployments_2.csv", changed), **lane)

    assert (second.accepted, second.unchanged) == (2, 9)
    stored = {
        (r["incident_urn"], r["staff_id"], r["role"]): r for r in rows_of(engine, "cc_deployments")
    }
    assert len(stored) == 11
    assert stored[("INC-1", "S1", "other")]["cleared_at"] == datetime(2025, 1, 2, 13, tzinfo=UTC)


def test_a_stored_key_after_new_chunks_is_merged_and_the_new_chunks_kept(
    engine, tmp_path, lane, monkeypatch
):
    """PostgreSQL COPYs chunks of new keys straight in; a later chunk that meets a stored
    key is undone alone and merged, with the chunks before it kept and counted once."""
    monkeypatch.setattr("engine.ingest.batches.CHUNK_ROWS", 2)
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"]), **lane)
    template = SAMPLE_ROWS["cc_deployments"][0]
    stored = {**template, "incident_urn": "INC-9"}
    ingest(engine, write_csv(tmp_path / "cc_deployments_1.csv", [stored]), **lane)

    new = [{**template, "incident_urn": f"INC-{n}"} for n in range(1, 6)]
    changed = {**stored, "cleared_at": "2025-01-02T13:00:00Z"}
    rows = [*new[:4], changed, new[4]]  # chunks: new, new, stored + new
    [report] = ingest(engine, write_csv(tmp_path / "cc_deployments_2.csv", rows), **lane)

    assert (report.accepted, report.unchanged) == (6, 0)
    by_urn = {r["incident_urn"]: r for r in rows_of(engine, "cc_deployments")}
    assert sorted(by_urn) == [f"INC-{n}" for n in (1, 2, 3, 4, 5, 9)]
    assert by_urn["INC-9"]["cleared_at"] == datetime(2025, 1, 2, 13, tzinfo=UTC)


@pytest.mark.postgres
def test_brin_indexes_are_summarised_when_a_load_commits(postgres_schema_url, tmp_path):
    """A BRIN range not yet summarised is read whatever the query: a load summarises what
    it added, so a search by run_id or time reads no page that can't match."""
    engine = make_engine(postgres_schema_url)
    migrate(engine)
    ingest(engine, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"]))
    template = SAMPLE_ROWS["cc_deployments"][0]
    # Several 128-page ranges of rows.
    rows = [{**template, "incident_urn": f"INC-{n:06d}"} for n in range(30_000)]
    ingest(engine, write_csv(tmp_path / "cc_deployments.csv", rows))
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        for column, beyond in (("run_id", "1000000"), ("arrived_at", "'2999-01-01'")):
            [[plan]] = conn.execute(
                sa.text(
                    "EXPLAIN (ANALYZE, FORMAT JSON) "
                    f"SELECT * FROM cc_deployments WHERE {column} > {beyond}"
                )
            )
            scan = plan[0]["Plan"]
            assert scan["Node Type"] == "Bitmap Heap Scan", scan
            read = scan.get("Lossy Heap Blocks", 0) + scan.get("Exact Heap Blocks", 0)
            assert read == 0, (column, scan)
    engine.dispose()


@pytest.mark.postgres
def test_a_role_that_may_only_write_rows_can_load_a_large_file(postgres_schema_url, tmp_path):
    """Summarising BRIN ranges needs the tables' owner; a role with only row rights loads
    all the same and leaves the summarising to autovacuum."""
    owner = make_engine(postgres_schema_url)
    migrate(owner)
    ingest(owner, write_csv(tmp_path / "people.csv", SAMPLE_ROWS["people"]))
    role = f"tt_writer_{uuid.uuid4().hex[:8]}"
    schema = postgres_schema_url.rsplit("%3D", 1)[1]
    with owner.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(
            sa.text(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                f'TO "{role}"'
            )
        )
        conn.execute(sa.text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'))
    writer = make_engine(postgres_schema_url.replace("postgres@", f"{role}@", 1))
    template = SAMPLE_ROWS["cc_deployments"][0]
    rows = [{**template, "incident_urn": f"INC-{n:06d}"} for n in range(30_000)]
    try:
        [report] = ingest(writer, write_csv(tmp_path / "cc_deployments.csv", rows))
        assert (report.outcome, report.accepted) == ("ok", 30_000)
        with owner.connect() as conn:
            indexes = conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'cc_deployments'")
            ).scalars()
            assert "ix_cc_deployments_run_id_arrived_at" in set(indexes)
    finally:
        writer.dispose()
        with owner.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        owner.dispose()


def test_an_error_in_one_feed_stops_the_others_and_reports_what_was_stored(
    engine, tmp_path, monkeypatch
):
    """With files worked on at once, an unexpected error (not a bad file) stops the work
    before the next file and is raised, as one by one would, after every file stored by
    then has been reported: nothing is stored, or moved to processed/, unreported. (On
    PostgreSQL feeds are stored side by side; on SQLite the next files were being
    prepared in other processes, and their scratch files are gone.)"""
    beside = _database_folder(engine, tmp_path)
    drop = tmp_path / "drop"
    write_force(drop)
    # A file that can't be read, due after the failing one: it is not touched before its turn.
    (drop / "rms_occurrences_zz_unreadable.csv").write_bytes(b"\xff\xfe\x00 not text")
    for n in range(3):  # more files per feed than can be running when the error comes
        incidents = [
            {**r, "incident_urn": f"{r['incident_urn']}-{n}"} for r in SAMPLE_ROWS["cc_incidents"]
        ]
        absences = [{**r, "spell_id": f"{r['spell_id']}-{n}"} for r in SAMPLE_ROWS["absences"]]
        write_csv(drop / f"cc_incidents_{n}.csv", incidents)
        write_csv(drop / f"absences_{n}.csv", absences)
    store = Ingestor._store

    def failing(self, conn, batch, *args):
        if batch.name.endswith("rms_occurrences_sample.csv"):
            raise RuntimeError("the database went away")
        return store(self, conn, batch, *args)

    monkeypatch.setattr(Ingestor, "_store", failing)
    reported = []
    with pytest.raises(RuntimeError, match="the database went away"):
        for report in ingest_files(
            Ingestor(engine), [drop], move=True, jobs=2, prepare_ahead=True, settle_seconds=0
        ):
            reported.append(report)

    processed = {p.name for p in (drop / "processed").iterdir()}
    assert {r.path.rsplit("/", 1)[-1] for r in reported} == processed
    assert {r.outcome for r in reported} == {"ok"}
    assert sorted(p.name for p in (drop / "failed").iterdir()) == [
        "rms_occurrences_sample.csv",
        "rms_occurrences_sample.csv.reason.txt",
    ]
    with engine.connect() as conn:
        stored_runs = conn.execute(
            sa.select(sa.func.count())
            .select_from(table_of(IngestRun))
            .where(table_of(IngestRun).c.outcome == "ok")
        ).scalar_one()
    assert stored_runs == len(processed)
    assert (drop / "rms_occurrences_zz_unreadable.csv").exists()
    assert list(beside.glob(".trauma-tracker-stage-*")) == []


def _database_folder(engine, tmp_path):
    """Where a SQLite load keeps its scratch files (PostgreSQL has none: any folder)."""
    database = engine.url.database
    return Path(database).parent if engine.dialect.name == "sqlite" else tmp_path


def test_what_a_worker_could_not_do_the_writer_does(tmp_path, monkeypatch, caplog):
    """A worker that fails (here: it can't create its scratch file) leaves the file to
    the writer, which stores it as one by one would; the worker's error is logged."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tracker.sqlite'}")
    migrate(engine)
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setattr("engine.ingest.prepare_ahead._scratch_folder", lambda engine: not_a_folder)
    files = write_force(tmp_path / "feeds")

    with caplog.at_level("WARNING", logger="engine.ingest.prepare_ahead"):
        reports = ingest(engine, *files, jobs=2, prepare_ahead=True)

    assert [(r.outcome, r.accepted) for r in reports] == [("ok", 2)] * len(FEEDS)
    assert len(rows_of(engine, "cc_deployments")) == 2
    failures = [r.getMessage() for r in caplog.records if r.name == "engine.ingest.prepare_ahead"]
    # Every file after units and people went to a worker, and each worker failed.
    assert len(failures) == len(FEEDS) - 2, failures
    assert all("OperationalError" in message for message in failures), failures
    assert "preparing a cc_deployments file in another process failed" in "\n".join(failures)
    engine.dispose()


def test_a_named_feed_and_a_file_that_cant_be_read_fail_alone(tmp_path):
    """With --feed, an empty or binary file among files being prepared ahead fails alone,
    in its place, as one by one."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tracker.sqlite'}")
    migrate(engine)
    first, second = SAMPLE_ROWS["cc_incidents"]
    paths = [
        write_csv(tmp_path / "a.csv", [first]),
        tmp_path / "b.csv",
        write_csv(tmp_path / "c.csv", [second]),
    ]
    paths[1].write_bytes(b"")

    reports = ingest(engine, *paths, feed="cc_incidents", jobs=3, prepare_ahead=True)

    assert [(r.path, r.outcome, r.accepted) for r in reports] == [
        (str(paths[0]), "ok", 1),
        (str(paths[1]), "failed", 0),
        (str(paths[2]), "ok", 1),
    ]
    assert "empty file" in reports[1].message
    engine.dispose()
