"""SQLModel tables and the database session; nothing else in the project is imported here."""

import sqlalchemy as sa
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from models.feeds import (
    FEED_TABLES,
    Absence,
    Deployment,
    Incident,
    Involvement,
    Occurrence,
    PersonVersion,
    RestDayCancellation,
    Unit,
)
from models.ingestion import HeldRow, IngestRun, QuarantinedRow, SourceWatermark
from models.rules import (
    Alert,
    AlertEvent,
    AlertFollowUp,
    AuditCheckpoint,
    AuditHead,
    Decision,
    ExposureMark,
    OutboxMessage,
    RuleMark,
    RuleRun,
    RulesetVersion,
)
from models.scoring import (
    CriteriaVersion,
    Evaluation,
    Exposure,
    OptOut,
    OptOutEvent,
    Snapshot,
)

# Text compares by its bytes on PostgreSQL (COLLATE "C"), as it does on SQLite: identifiers
# need no language's rules, the two databases then sort alike, and a b-tree of keys is kept
# up with memcmp instead of strcoll (about a twentieth of a large load, bench/ingest.py).
for _table in SQLModel.metadata.tables.values():
    for _column in _table.columns:
        if isinstance(_column.type, AutoString):
            _bytewise = sa.String(collation="C")
        elif isinstance(_column.type, sa.Text):
            _bytewise = sa.Text(collation="C")
        else:
            continue
        _column.type = _column.type.with_variant(_bytewise, "postgresql")

__all__ = [
    "FEED_TABLES",
    "Absence",
    "Alert",
    "AlertEvent",
    "AlertFollowUp",
    "AuditCheckpoint",
    "AuditHead",
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
    "Snapshot",
    "SourceWatermark",
    "Unit",
]
