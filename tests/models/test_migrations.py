"""The migrations build exactly the schema the models describe (an `alembic check`)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from engine.indicators import SNAPSHOT_FIELDS
from models import Snapshot
from models.db import make_engine, migrate
from models.feeds import built_on


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            # What the models build on this database only (models.feeds.growing_indexes).
            context = MigrationContext.configure(
                conn,
                opts={"include_object": lambda obj, *_: built_on(obj, conn.dialect.name)},
            )
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_every_snapshot_field_has_a_column():
    columns = set(Snapshot.__table__.columns.keys())
    assert set(SNAPSHOT_FIELDS) <= columns
