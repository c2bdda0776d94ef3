"""The administrators' figures, from real ingest runs, sources and outbox rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.ingest.batches import Ingestor
from engine.ingest.files import ingest_files
from engine.oversight.admin import (
    AdminError,
    delivery,
    held_rows,
    ingest_runs,
    pulled_sources,
    quarantined_rows,
    retry_message,
)
from engine.oversight.service_runs import record_failure, record_success
from models import OutboxMessage, SourceWatermark, table_of
from notifications.outbox import OutboxError
from tests.engine.rulekit import database
from tests.feedfiles import write_csv

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def person_row(staff_id: str, **fields):
    return {
        "staff_id": staff_id,
        "display_name": f"Person {staff_id}",
        "staff_type": "officer",
        "role_group": "response",
        "unit_id": "T1",
        "service_start": "2015-01-01",
        "valid_from": "2015-01-01",
        **fields,
    }


@pytest.fixture
def engine(database_url, tmp_path):
    engine = database(database_url)
    files = [
        write_csv(tmp_path / "units_1.csv", [
            {"unit_id": "F", "parent_id": "", "level": "force", "name": "Force"},
            {"unit_id": "T1", "parent_id": "F", "level": "team", "name": "Team"},
        ]),
        write_csv(tmp_path / "people_1.csv", [
            person_row("P1"),
            person_row("P2", service_start="2015-13-01"),
        ]),
        write_csv(tmp_path / "cc_deployments_1.csv", [
            {"incident_urn": "INC-1", "staff_id": "P1", "role": "attending"},
            {"incident_urn": "INC-1", "staff_id": "P9", "role": "attending"},
            {"incident_urn": "INC-2", "staff_id": "P9", "role": "attending"},
        ]),
    ]  # fmt: skip
    list(ingest_files(Ingestor(engine), files))
    yield engine
    engine.dispose()


def test_ingest_runs_newest_first_with_counts_and_duration(engine):
    runs = ingest_runs(engine)
    assert [(r["feed"], r["outcome"]) for r in runs] == [
        ("cc_deployments", "ok"),
        ("people", "ok"),
        ("units", "ok"),
    ]
    people = runs[1]
    assert people["source"].endswith("people_1.csv")
    assert (people["rows"], people["accepted"], people["rejected"]) == (2, 1, 1)
    assert people["duration_ms"] is not None and people["duration_ms"] >= 0
    assert runs[0]["held"] == 2
    assert ingest_runs(engine, outcome="failed") == []
    assert len(ingest_runs(engine, limit=2)) == 2
    assert [r["outcome"] for r in ingest_runs(engine, feed="people")] == ["ok"]
    with pytest.raises(AdminError, match="^outcome: "):
        ingest_runs(engine, outcome="great")


def test_quarantined_rows_give_file_line_field_and_reason_not_the_row(engine):
    listed = quarantined_rows(engine)
    assert listed["total"] == 1
    row = listed["rows"][0]
    assert row["source"].endswith("people_1.csv") and row["line"] == 3
    assert row["field"] == "service_start"
    assert row["reason"]
    assert set(row) == {"run_id", "source", "line", "field", "reason"}
    assert "Person P2" not in json.dumps(listed)


def test_held_rows_wait_for_their_person(engine):
    held = held_rows(engine)
    assert held["total"] == 2
    assert {(r["feed"], r["staff_id"], r["line"]) for r in held["rows"]} == {
        ("cc_deployments", "P9", 3),
        ("cc_deployments", "P9", 4),
    }
    assert held["by_staff_id"] == [{"staff_id": "P9", "rows": 2}]


def test_pulled_sources_with_watermarks_and_last_success(engine):
    with engine.begin() as conn:
        conn.execute(
            table_of(SourceWatermark).insert(),
            [{"source_key": "rms-api", "watermark": "2025-06-15T11:00:00Z", "updated_at": NOW}],
        )
    record_success(engine, "source:rms-api", "source", NOW - timedelta(hours=1), "host:1")
    record_failure(engine, "source:cad-sql", "source", NOW, "host:1", "OperationalError: timeout")
    sources = {s["source"]: s for s in pulled_sources(engine)}
    assert sources["rms-api"]["watermark"] == "2025-06-15T11:00:00Z"
    assert sources["rms-api"]["last_success_at"] == "2025-06-15T12:00:00Z"
    assert sources["cad-sql"]["watermark"] is None
    assert sources["cad-sql"]["last_success_at"] is None
    assert sources["cad-sql"]["failures_since_success"] == 1
    assert sources["cad-sql"]["last_error"] == "OperationalError: timeout"


def test_the_outbox_by_channel_and_a_failed_message_retried(engine):
    with engine.begin() as conn:
        conn.execute(
            table_of(OutboxMessage).insert(),
            [
                {"kind": "alert", "channel": "email", "recipient": "S1", "payload": "{}",
                 "status": "failed", "due_at": NOW, "created_at": NOW, "attempts": 8,
                 "last_error": "550 mailbox unavailable"},
                {"kind": "alert", "channel": "teams", "recipient": "S1", "payload": "{}",
                 "status": "pending", "due_at": NOW, "created_at": NOW, "attempts": 0,
                 "last_error": None},
            ],
        )  # fmt: skip
    shown = delivery(engine)
    assert shown["counts"] == {"email": {"failed": 1}, "teams": {"pending": 1}}
    assert [m["last_error"] for m in shown["messages"]] == ["550 mailbox unavailable"]
    failed_id = shown["messages"][0]["id"]
    retry_message(engine, failed_id, NOW)
    assert delivery(engine)["counts"]["email"] == {"pending": 1}
    with pytest.raises(OutboxError):
        retry_message(engine, failed_id, NOW)
    with pytest.raises(AdminError, match="^status: "):
        delivery(engine, status="lost")
