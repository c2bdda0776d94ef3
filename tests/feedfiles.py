"""Small, hand-written feed files for tests: a valid row per feed and helpers to write files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa

from engine.ingest.feeds import FEEDS
from models import FEED_TABLES, HeldRow, QuarantinedRow, table_of

SAMPLE_ROWS: dict[str, list[dict[str, str]]] = {
    "units": [
        {"unit_id": "F", "parent_id": "", "level": "force", "name": "Force"},
        {"unit_id": "T1", "parent_id": "F", "level": "team", "name": "Response team 1"},
    ],
    "people": [
        {
            "staff_id": "S1",
            "display_name": "Alex Officer",
            "email": "alex@force.example",
            "collar_number": "1001",
            "staff_type": "officer",
            "rank_or_grade": "PC",
            "role_group": "response",
            "unit_id": "T1",
            "supervisor_id": "S2",
            "service_start": "2015-04-01",
            "leave_date": "",
            "valid_from": "2015-04-01",
        },
        {
            "staff_id": "S2",
            "display_name": "Sam Sergeant",
            "email": "sam@force.example",
            "collar_number": "1002",
            "staff_type": "officer",
            "rank_or_grade": "PS",
            "role_group": "response",
            "unit_id": "T1",
            "supervisor_id": "",
            "service_start": "2008-09-01",
            "leave_date": "",
            "valid_from": "2008-09-01",
        },
    ],
    "cc_incidents": [
        {
            "incident_urn": "INC-1",
            "created_at": "2025-01-02T10:00:00Z",
            "closed_at": "2025-01-02T12:30:00+00:00",
            "opening_code": "CONCERN_FOR_WELFARE",
            "closing_code": "SUDDEN_DEATH",
            "qualifiers": "CHILD|FIREARM",
            "grade": "1",
            "unit_id": "T1",
        },
        {
            "incident_urn": "INC-2",
            "created_at": "2025-07-01T23:30:00",
            "closed_at": "",
            "opening_code": "",
            "closing_code": "ASB",
            "qualifiers": "",
            "grade": "3",
            "unit_id": "T1",
        },
    ],
    "cc_deployments": [
        {
            "incident_urn": "INC-1",
            "staff_id": "S1",
            "role": "first_on_scene",
            "arrived_at": "2025-01-02T10:12:00Z",
            "cleared_at": "2025-01-02T12:00:00Z",
        },
        {
            "incident_urn": "INC-1",
            "staff_id": "S2",
            "role": "supervisor",
            "arrived_at": "",
            "cleared_at": "",
        },
    ],
    "rms_occurrences": [
        {
            "occurrence_ref": "OCC-1",
            "reported_at": "2025-01-02T11:00:00Z",
            "hocr_code": "1/1",
            "crime_flags": "CHILD",
            "iioc_category": "",
            "status": "open",
            "closed_at": "",
            "linked_incident_urn": "INC-1",
            "unit_id": "T1",
        },
        {
            "occurrence_ref": "OCC-2",
            "reported_at": "2024-03-05T09:00:00Z",
            "hocr_code": "86/2",
            "crime_flags": "",
            "iioc_category": "A",
            "status": "closed",
            "closed_at": "2024-06-01T16:00:00Z",
            "linked_incident_urn": "",
            "unit_id": "",
        },
    ],
    "rms_involvements": [
        {
            "occurrence_ref": "OCC-1",
            "staff_id": "S1",
            "role": "oic",
            "assigned_at": "2025-01-02T11:05:00Z",
            "unassigned_at": "",
        },
        {
            "occurrence_ref": "OCC-2",
            "staff_id": "S2",
            "role": "image_reviewer",
            "assigned_at": "2024-03-06T09:00:00Z",
            "unassigned_at": "2024-04-06T09:00:00Z",
        },
    ],
    "rest_day_cancellations": [
        {
            "cancellation_id": "RDC-1",
            "staff_id": "S1",
            "rest_day": "2025-02-01",
            "notified_on": "2025-01-25",
            "status": "cancelled",
        },
        {
            "cancellation_id": "RDC-2",
            "staff_id": "S1",
            "rest_day": "2025-03-01",
            "notified_on": "2025-01-25",
            "status": "",
        },
    ],
    "absences": [
        {
            "spell_id": "AB-1",
            "staff_id": "S1",
            "start_date": "2025-02-10",
            "end_date": "2025-02-14",
            "absence_type": "sickness",
            "reason_group": "psychological",
            "working_days_lost": "5",
        },
        {
            "spell_id": "AB-2",
            "staff_id": "S2",
            "start_date": "2025-03-01",
            "end_date": "",
            "absence_type": "injury_on_duty",
            "reason_group": "musculoskeletal",
            "working_days_lost": "",
        },
    ],
}


def write_csv(path: Path, rows: list[dict[str, str]], columns=None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_ndjson(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w") as handle:
        for row in rows:
            record = {k: v for k, v in row.items() if v != ""}
            if "qualifiers" in record:
                record["qualifiers"] = record["qualifiers"].split("|")
            handle.write(json.dumps(record) + "\n")
    return path


def write_force(folder: Path, fmt: str = "csv") -> list[Path]:
    """Every feed's sample rows, one file each, named by feed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for feed, rows in SAMPLE_ROWS.items():
        if fmt == "csv":
            written.append(write_csv(folder / f"{feed}_sample.csv", rows))
        else:
            written.append(write_ndjson(folder / f"{feed}_sample.ndjson", rows))
    return written


def database_state(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Everything ingest stores about the force, without run ids and timestamps."""
    state: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for feed, model in FEED_TABLES.items():
            table = table_of(model)
            columns = [table.c[name] for name in FEEDS[feed].columns]
            state[feed] = sorted(tuple(r) for r in conn.execute(sa.select(*columns)))
        quarantined = table_of(QuarantinedRow)
        state["quarantined"] = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(quarantined.c.source, quarantined.c.line, quarantined.c.reason)
            )
        )
        held = table_of(HeldRow)
        state["held"] = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(held.c.feed, held.c.row_key, held.c.line, held.c.linked_at.is_(None))
            )
        )
    return state
