"""A tiny force written in a test and stored through the real ingest path.

Each helper gives one feed record with sensible defaults, so a test names only what it is
about: `force.add(incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"))`.
"""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.evaluation import EvaluationReport, run_evaluation
from engine.ingest.batches import Ingestor
from engine.ingest.feeds import FEEDS
from engine.scoring.criteria import Criteria, parse_criteria
from integrations.base import Batch, rows_from_records
from models import table_of
from models.db import make_engine, migrate

# Criteria made for the tests, independent of the shipped weights.
TEST_CRITERIA_TEXT = """\
tiers: {1: 1, 2: 2, 3: 3}
roles:
  first_on_scene: 1.0
  attending: 1.0
  oic: 1.0
  image_reviewer: 1.0
  investigator: 0.5
  supervisor: 0.5
  call_handler: 0.25
categories:
  - id: child_death
    label: Death of a child
    tier: 3
    match:
      - {feed: cc_incidents, closing_code: [SUDDEN_DEATH, RTC_FATAL], qualifier: CHILD}
      - {feed: rms_occurrences, hocr_code: ["1/1", "4/1"], crime_flag: CHILD}
  - id: threat_to_life
    label: Threat to life
    tier: 3
    match:
      - {feed: cc_incidents, qualifier: [FIREARM, THREAT_TO_LIFE]}
  - id: homicide
    label: Homicide
    tier: 2
    match:
      - {feed: rms_occurrences, hocr_code: ["1/1", "1/2", "4/1"]}
  - id: suicide
    label: Suicide
    tier: 2
    match:
      - {feed: cc_incidents, closing_code: SUICIDE}
  - id: images_ab
    label: Category A or B images
    tier: 2
    match:
      - {feed: rms_occurrences, iioc_category: [A, B]}
  - id: sudden_death
    label: Sudden death
    tier: 1
    match:
      - {feed: cc_incidents, closing_code: SUDDEN_DEATH}
  - id: knife
    label: Knife crime
    tier: 1
    match:
      - {feed: cc_incidents, qualifier: KNIFE}
"""
TEST_CRITERIA = parse_criteria(TEST_CRITERIA_TEXT, "test-criteria.yaml")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def person(staff_id: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "people", {
        "staff_id": staff_id,
        "display_name": f"Person {staff_id}",
        "staff_type": "officer",
        "rank_or_grade": "Constable",
        "role_group": "response",
        "unit_id": "T1",
        "supervisor_id": None,
        "service_start": "2015-01-01",
        "valid_from": "2015-01-01",
        **fields,
    }


def incident(urn: str, created_at: str, closing_code: str, qualifiers: str = "", **fields):
    return "cc_incidents", {
        "incident_urn": urn,
        "created_at": created_at,
        "closing_code": closing_code,
        "qualifiers": qualifiers,
        **fields,
    }


def deployment(urn: str, staff_id: str, role: str = "attending", arrived_at: str | None = None):
    return "cc_deployments", {
        "incident_urn": urn,
        "staff_id": staff_id,
        "role": role,
        "arrived_at": arrived_at,
    }


def occurrence(ref: str, reported_at: str, hocr_code: str, **fields):
    return "rms_occurrences", {
        "occurrence_ref": ref,
        "reported_at": reported_at,
        "hocr_code": hocr_code,
        "status": "open",
        **fields,
    }


def involvement(ref: str, staff_id: str, role: str, assigned_at: str, **fields):
    return "rms_involvements", {
        "occurrence_ref": ref,
        "staff_id": staff_id,
        "role": role,
        "assigned_at": assigned_at,
        **fields,
    }


_ids = itertools.count(1)


def rest_day(staff_id: str, day: str, notified_on: str, status: str = "cancelled"):
    return "rest_day_cancellations", {
        "cancellation_id": f"RDC-{next(_ids)}",
        "staff_id": staff_id,
        "rest_day": day,
        "notified_on": notified_on,
        "status": status,
    }


def absence(staff_id: str, start: str, end: str | None, absence_type: str = "sickness"):
    return "absences", {
        "spell_id": f"AB-{next(_ids)}",
        "staff_id": staff_id,
        "start_date": start,
        "end_date": end,
        "absence_type": absence_type,
    }


class Force:
    """A database with a force in it, and the test's criteria."""

    def __init__(self, url: str, criteria: Criteria = TEST_CRITERIA):
        self.engine = make_engine(url)
        migrate(self.engine)
        self.criteria = criteria
        self.criteria_text = TEST_CRITERIA_TEXT

    def add(self, *records: tuple[str, dict[str, Any]]) -> None:
        """Ingest records, one batch per feed, in the order ingest wants them."""
        by_feed: dict[str, list[dict[str, Any]]] = {}
        for feed, record in records:
            by_feed.setdefault(feed, []).append(record)
        for feed in FEEDS:
            if feed in by_feed:
                columns = FEEDS[feed].columns
                batch = Batch(
                    name=f"test:{feed}",
                    feed=feed,
                    columns=columns,
                    rows=rows_from_records(by_feed[feed], columns),
                )
                report = Ingestor(self.engine).ingest(batch)
                assert report.rejected == 0, report.rejects

    def evaluate(self, as_of: str | datetime, *, full: bool = False, **options) -> EvaluationReport:
        moment = utc(as_of) if isinstance(as_of, str) else as_of
        return run_evaluation(
            self.engine,
            self.criteria,
            self.criteria_text,
            as_of=moment,
            full=full,
            clock=lambda: moment,
            **options,
        )

    def exposures(self, staff_id: str | None = None) -> list[dict[str, Any]]:
        """Stored exposures (of one person), by reference, without when they were scored."""
        from models import Exposure

        table = table_of(Exposure)
        query = sa.select(table).order_by(table.c.ref, table.c.staff_id)
        if staff_id:
            query = query.where(table.c.staff_id == staff_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            del row["scored_at"]
        return rows

    def snapshot(self, staff_id: str, as_of: str | None = None) -> dict[str, Any] | None:
        """The person's current snapshot, or the one at `as_of`."""
        from models import Snapshot

        table = table_of(Snapshot)
        query = sa.select(table).where(table.c.staff_id == staff_id)
        if as_of is None:
            query = query.where(table.c.is_current.is_(True))
        else:
            query = query.where(table.c.as_of == utc(as_of))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def count(self, table: str, staff_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE staff_id = :s"), {"s": staff_id}
            ).scalar_one()

    def close(self) -> None:
        self.engine.dispose()


def write_criteria(folder: Path, text: str = TEST_CRITERIA_TEXT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "criteria.yaml").write_text(text)
    return folder


def write_rules(folder: Path, text: str = TEST_CRITERIA_TEXT) -> Path:
    """A rules folder: the test criteria, and the shipped intervention rules and routing."""
    from trauma_tracker.settings import SHIPPED_RULES

    write_criteria(folder, text)
    shutil.copytree(SHIPPED_RULES / "interventions", folder / "interventions")
    shutil.copy(SHIPPED_RULES / "routing.yaml", folder / "routing.yaml")
    return folder


def cli_with_rules(database_url: str, rules: Path):
    """`trauma-tracker --db URL --rules DIR ARGS...` as a function of ARGS, for CLI tests."""
    from click.testing import CliRunner

    from trauma_tracker.cli import main

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--db", database_url, "--rules", str(rules), *map(str, args)])

    invoke.rules = rules
    return invoke
