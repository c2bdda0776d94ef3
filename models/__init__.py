"""SQLModel tables and the database session; nothing else in the project is imported here.

Each area's tables live in a module of their own (feeds, scoring, rules, ...) and are loaded
when first named (`from models import Alert` loads models.rules): a command that reads a
person's exposure loads the feed and scoring tables, not the two dozen others, and starts
sooner. What needs every table (migrations, a schema comparison) calls every_table().
"""

import importlib
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

# Where each exported name is defined (the module under models/).
_AREAS = {
    "delivery": ("ChannelHealth",),
    "feeds": (
        "FEED_TABLES",
        "Absence",
        "Deployment",
        "Incident",
        "Involvement",
        "Occurrence",
        "PersonVersion",
        "RestDayCancellation",
        "Unit",
    ),
    "ingestion": ("HeldRow", "IngestRun", "QuarantinedRow", "SourceWatermark"),
    "oversight": ("AlertAssignment", "WellbeingMember"),
    "rules": (
        "Alert",
        "AlertEvent",
        "AlertFollowUp",
        "AuditCheckpoint",
        "AuditHead",
        "Decision",
        "ExposureMark",
        "OutboxMessage",
        "RuleMark",
        "RuleRun",
        "RulesetVersion",
    ),
    "scoring": ("CriteriaVersion", "Evaluation", "Exposure", "OptOut", "OptOutEvent", "Snapshot"),
    "service": ("ServiceRun",),
    "web": ("AccessLogEntry", "ConversationRequest"),
}
_HOME = {name: area for area, names in _AREAS.items() for name in names}


def __getattr__(name: str) -> Any:
    """An exported table (or FEED_TABLES), its module loaded on first use."""
    area = _HOME.get(name)
    if area is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"models.{area}"), name)
    globals()[name] = value
    return value


def every_table() -> sa.MetaData:
    """SQLModel's metadata with every area's tables loaded (for migrations and comparisons)."""
    for area in _AREAS:
        importlib.import_module(f"models.{area}")
    return SQLModel.metadata


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a model, for set-based statements: the one way the project reaches
    one (a module that uses it often binds it once, as `alerts_t = table_of(Alert)`)."""
    return model.__table__  # type: ignore[attr-defined]


def compare_text_bytewise() -> None:
    """Text compares by its bytes on PostgreSQL (COLLATE "C"), as it does on SQLite:
    identifiers need no language's rules, the two databases then sort alike, and a b-tree of
    keys is kept up with memcmp instead of strcoll (about a twentieth of a large load,
    bench/ingest.py). Migration 0006 made the same change to existing databases.

    Every area module calls this at its end, for the tables defined so far that don't have
    it yet, so a table has it however its module was loaded."""
    for table in SQLModel.metadata.tables.values():
        if table.info.get("text_bytewise"):
            continue
        table.info["text_bytewise"] = True
        for column in table.columns:
            if isinstance(column.type, AutoString):
                bytewise = sa.String(collation="C")
            elif isinstance(column.type, sa.Text):
                bytewise = sa.Text(collation="C")
            else:
                continue
            column.type = column.type.with_variant(bytewise, "postgresql")


__all__ = [
    "every_table",
    "compare_text_bytewise",
    "FEED_TABLES",
    "Absence",
    "AccessLogEntry",
    "Alert",
    "AlertAssignment",
    "AlertEvent",
    "AlertFollowUp",
    "AuditCheckpoint",
    "AuditHead",
    "ConversationRequest",
    "ChannelHealth",
    "CriteriaVersion",
    "Decision",
    "Deployment",
    "Evaluation",
    "Exposure",
    "ExposureMark",
    "HeldRow",
    "Incident",
    "IngestRun",
    "Involvement",
    "Occurrence",
    "OptOut",
    "OptOutEvent",
    "OutboxMessage",
    "PersonVersion",
    "QuarantinedRow",
    "RestDayCancellation",
    "RuleMark",
    "RuleRun",
    "RulesetVersion",
    "ServiceRun",
    "Snapshot",
    "SourceWatermark",
    "Unit",
    "WellbeingMember",
    "table_of",
]
