"""The migrations build exactly the schema the models describe (an `alembic check`)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from engine.indicators import SNAPSHOT_FIELDS
from models import Snapshot
from models.db import make_engine, migrate


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_every_snapshot_field_has_a_column():
    columns = set(Snapshot.__table__.columns.keys())
    assert set(SNAPSHOT_FIELDS) <= columns
