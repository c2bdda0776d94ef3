"""SQLModel tables and the database session; nothing else in the project is imported here."""

import sqlalchemy as sa
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

# Each area's tables register with SQLModel's metadata on import; export them below as they come.
from models import delivery, oversight, service, web  # noqa: F401
from models.delivery import ChannelHealth
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
from models.oversight import AlertAssignment, WellbeingMember
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
from models.service import ServiceRun
from models.web import AccessLogEntry, ConversationRequest


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a model, for set-based statements: the one way the project reaches
    one (a module that uses it often binds it once, as `alerts_t = table_of(Alert)`)."""
    return model.__table__  # type: ignore[attr-defined]


def _compare_text_bytewise() -> None:
    """Text compares by its bytes on PostgreSQL (COLLATE "C"), as it does on SQLite:
    identifiers need no language's rules, the two databases then sort alike, and a b-tree of
    keys is kept up with memcmp instead of strcoll (about a twentieth of a large load,
    bench/ingest.py). Migration 0006 made the same change to existing databases."""
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, AutoString):
                bytewise = sa.String(collation="C")
            elif isinstance(column.type, sa.Text):
                bytewise = sa.Text(collation="C")
            else:
                continue
            column.type = column.type.with_variant(bytewise, "postgresql")


_compare_text_bytewise()

__all__ = [
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
