"""SQLModel tables and the database session; nothing else in the project is imported here."""

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

__all__ = [
    "FEED_TABLES",
    "Absence",
    "Deployment",
    "HeldRow",
    "Incident",
    "IngestRun",
    "Involvement",
    "Occurrence",
    "PersonVersion",
    "QuarantinedRow",
    "RestDayCancellation",
    "SourceWatermark",
    "Unit",
]
