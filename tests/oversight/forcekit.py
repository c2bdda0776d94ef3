"""A small force for the oversight tests, stored through the real ingest and evaluate paths.

    F (force)
    ├── A1 (area) ── D1 (department) ── T1, T2, T3 (teams)
    └── A2 (area) ── D2 (department) ── T4 (team)

T1: P1-P6, P7 (opted out after an exposure), and P8 until yesterday (moved to T3).
T2: Q1-Q3 (three people: suppressed). T3: S1-S7 and P8. T4: R1-R5, and L1 who has left.
N1 joins T4 tomorrow. Exposures (sudden deaths, 1 point each, attending): P1, P2, P7, P8, S1
on 1 May 2025; R1 on 1 June 2025 and on 1 April 2024 (outside 365 days).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from engine.people.opt_out import opt_out
from models import Alert, table_of
from tests.forcedata import Force, deployment, incident, person

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

UNITS = [
    ("F", None, "force", "Avon Test Police"),
    ("A1", "F", "area", "North"),
    ("A2", "F", "area", "South"),
    ("D1", "A1", "department", "North Response"),
    ("D2", "A2", "department", "South Response"),
    ("T1", "D1", "team", "Team One"),
    ("T2", "D1", "team", "Team Two"),
    ("T3", "D1", "team", "Team Three"),
    ("T4", "D2", "team", "Team Four"),
]


def unit(unit_id, parent_id, level, name):
    return "units", {"unit_id": unit_id, "parent_id": parent_id, "level": level, "name": name}


def people_records():
    records = [person(f"P{i}", unit_id="T1") for i in range(1, 8)]
    records += [
        person("P8", unit_id="T1"),
        person("P8", unit_id="T3", valid_from="2025-06-14"),
    ]
    records += [person(f"Q{i}", unit_id="T2") for i in range(1, 4)]
    records += [person(f"S{i}", unit_id="T3") for i in range(1, 8)]
    records += [person(f"R{i}", unit_id="T4") for i in range(1, 6)]
    records += [person("L1", unit_id="T4", leave_date="2025-05-31")]
    records += [person("N1", unit_id="T4", valid_from="2025-06-16", service_start="2025-06-16")]
    return records


def alert_row(alert_id: int, staff_id: str, status: str, opened_at: datetime, **extra):
    return {
        "id": alert_id,
        "staff_id": staff_id,
        "rule_id": extra.pop("rule_id", "combined-indicator"),
        "rule_version": "v1",
        "ruleset_hash": "r1",
        "severity": extra.pop("severity", "high"),
        "title": extra.pop("title", "Combined welfare indicator"),
        "status": status,
        "open_key": None if status == "resolved" else f"{extra.get('rule', 'c')}:{staff_id}",
        "opened_at": opened_at,
        "decision_id": f"d-{alert_id}",
        "notify": '["supervisor", "wellbeing"]',
        "recipients": '[{"name": "wellbeing", "to": "wellbeing@force.example"}]',
        # Every row names every column: an insert of several rows takes the first one's.
        "escalated_at": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "outcome": None,
        **{k: v for k, v in extra.items() if k != "rule"},
    }


def build_force(url: str) -> Force:
    force = Force(url)
    records = [unit(*u) for u in UNITS] + people_records()
    records += [incident("INC-1", "2025-05-01T10:00:00Z", "SUDDEN_DEATH")]
    records += [deployment("INC-1", s) for s in ("P1", "P2", "P7", "P8", "S1")]
    records += [
        incident("INC-2", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"),
        incident("INC-0", "2024-04-01T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-2", "R1"),
        deployment("INC-0", "R1"),
    ]
    force.add(*records)
    force.evaluate(NOW)
    opt_out(force.engine, "P7", actor="admin", clock=lambda: NOW)
    with force.engine.begin() as conn:
        conn.execute(
            table_of(Alert).insert(),
            [
                alert_row(1, "R2", "open", datetime(2025, 6, 10, 9, 0, tzinfo=UTC)),
                alert_row(2, "R3", "resolved", datetime(2025, 5, 2, 9, 0, tzinfo=UTC)),
                alert_row(3, "P8", "acknowledged", datetime(2025, 6, 10, 9, 0, tzinfo=UTC)),
            ],
        )
    return force


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
