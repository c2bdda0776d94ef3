"""Feed files as a force's systems drop them: a team and a new tier-3 exposure."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.feedfiles import SAMPLE_ROWS, write_csv

OFFICER, SUPERVISOR, OTHER_OFFICER = "S1", "S2", "S3"
# Words that must never reach a log line or a message beyond what CONTRACT allows.
PRIVATE_WORDS = ("Alex Officer", "Sam Sergeant", "Jo Constable", "SUDDEN_DEATH", "CHILD", "INC-")


def settle(path: Path) -> Path:
    """Backdate the file a little, as if its writer finished a moment ago (the scheduler
    leaves files it sees being written for the next poll)."""
    past = time.time() - 5
    os.utime(path, (past, past))
    return path


def write_team(folder: Path, supervisor_email: str = "sam@force.example") -> list[Path]:
    """The units and people files: S1 and S3 supervised by S2."""
    people = [dict(row) for row in SAMPLE_ROWS["people"]]
    people[1]["email"] = supervisor_email
    people.append(
        {
            **people[0],
            "staff_id": OTHER_OFFICER,
            "display_name": "Jo Constable",
            "email": "jo@force.example",
            "collar_number": "1003",
        }
    )
    return [
        settle(write_csv(folder / "units.csv", SAMPLE_ROWS["units"])),
        settle(write_csv(folder / "people.csv", people)),
    ]


def write_exposure(
    folder: Path,
    urn: str,
    at: datetime | None = None,
    staff_id: str = OFFICER,
    other_incidents: int = 0,
) -> list[Path]:
    """A cc_incidents and a cc_deployments file: `staff_id` attended the death of a child
    (tier 3 in the test criteria) an hour before `at` (default now). `other_incidents` more
    incidents nobody attended make the incidents file take a while to ingest."""
    moment = (at or datetime.now(UTC)) - timedelta(hours=1)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    incident = {
        "incident_urn": urn,
        "created_at": stamp,
        "closed_at": "",
        "opening_code": "CONCERN_FOR_WELFARE",
        "closing_code": "SUDDEN_DEATH",
        "qualifiers": "CHILD",
        "grade": "1",
        "unit_id": "T1",
    }
    deployment = {
        "incident_urn": urn,
        "staff_id": staff_id,
        "role": "first_on_scene",
        "arrived_at": stamp,
        "cleared_at": "",
    }
    others = [
        {**incident, "incident_urn": f"{urn}-X{n}", "closing_code": "ADVICE", "qualifiers": ""}
        for n in range(other_incidents)
    ]
    return [
        settle(write_csv(folder / f"cc_incidents_{urn}.csv", [incident, *others])),
        settle(write_csv(folder / f"cc_deployments_{urn}.csv", [deployment])),
    ]
