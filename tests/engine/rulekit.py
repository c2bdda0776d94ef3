"""Helpers for the rules tests: a migrated database, people, snapshots, rule folders."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.rules.pack import RulePack, load_pack
from models import PersonVersion, table_of
from models.db import make_engine, migrate
from trauma_tracker.settings import SHIPPED_RULES

AS_OF = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)

# A snapshot that meets none of the default rules.
QUIET: dict[str, Any] = {
    "trauma_points_7d": 0.0,
    "trauma_points_30d": 0.0,
    "trauma_points_90d": 0.0,
    "trauma_points_365d": 0.0,
    "trauma_points_5y": 0.0,
    "exposures_30d": 0,
    "tier3_exposures_30d": 0,
    "tier2plus_exposures_30d": 0,
    "trauma_points_365d_role_percentile": 0.0,
    "cancelled_rest_days_90d": 0,
    "sickness_days_365d": 0,
    "open_investigations": 0,
    "absent_now": False,
    "service_years": 10.0,
    "staff_type": "officer",
    "role_group": "response",
    "rank_or_grade": "PC",
}

# Meets cluster-30d, combined-indicator and peer-high-exposure.
THREE_RULES = {
    "tier2plus_exposures_30d": 3,
    "trauma_points_90d": 14.0,
    "cancelled_rest_days_90d": 3,
    "trauma_points_365d_role_percentile": 97.0,
    "trauma_points_365d": 40.0,
}


def snapshot(staff_id: str, **figures: Any) -> dict[str, Any]:
    return {"staff_id": staff_id, **QUIET, **figures}


def database(url: str) -> sa.Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


def add_people(engine: sa.Engine, *people: dict[str, Any]) -> None:
    """People versions; each needs staff_id, and may give valid_from, supervisor_id, ..."""
    rows = []
    for person in people:
        rows.append(
            {
                "valid_from": date(2015, 1, 1),
                "display_name": f"Person {person['staff_id']}",
                "staff_type": "officer",
                "role_group": "response",
                "unit_id": "T1",
                "supervisor_id": None,
                "service_start": date(2015, 1, 1),
                **person,
            }
        )
    with engine.begin() as conn:
        conn.execute(table_of(PersonVersion).insert(), rows)


def default_pack() -> RulePack:
    return load_pack(SHIPPED_RULES)


def copy_rules(target: Path) -> Path:
    """A copy of the shipped rules folder to edit."""
    shutil.copytree(SHIPPED_RULES, target)
    return target


def exposure(staff_id: str, at: datetime, tier: int = 3, ref: str = "INC-1", **extra: Any):
    return {
        "staff_id": staff_id,
        "incident_key": f"cc:{ref}",
        "feed": "cc_incidents",
        "ref": ref,
        "role": "first_on_scene",
        "category": "child_death" if tier == 3 else "homicide",
        "tier": tier,
        "points": float(tier),
        "at": at,
        **extra,
    }
