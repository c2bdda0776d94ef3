"""The migrations build exactly the schema the models describe (an `alembic check`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects.postgresql import dialect as PostgresDialect

from engine.scoring.indicators import SNAPSHOT_FIELDS
from models import Snapshot, every_table, table_of
from models.db import _alembic_config, make_engine, migrate
from models.feeds import built_on

postgresql_dialect = PostgresDialect()


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
            differences = compare_metadata(context, every_table())
    finally:
        engine.dispose()
    assert differences == []


def test_create_all_builds_what_built_on_says(database_url):
    """`create_all` (the models' own DDL) builds on each database exactly the schema that
    `built_on` describes to Alembic: the PostgreSQL-only BRIN index and the SQLite-only
    b-trees of `growing_indexes` land each on its own database, and only there."""
    engine = make_engine(database_url)
    try:
        every_table().create_all(engine)
        with engine.connect() as conn:
            dialect = conn.dialect.name
            context = MigrationContext.configure(
                conn, opts={"include_object": lambda obj, *_: built_on(obj, dialect)}
            )
            assert compare_metadata(context, every_table()) == []
            indexes = {index["name"] for index in sa.inspect(conn).get_indexes("cc_incidents")}
    finally:
        engine.dispose()
    both = "ix_cc_incidents_run_id_created_at"
    apart = {"ix_cc_incidents_run_id", "ix_cc_incidents_created_at"}
    if dialect == "postgresql":
        assert both in indexes and not indexes & apart
    else:
        assert apart <= indexes and both not in indexes


def test_migrations_go_down_and_up_again(database_url):
    """Each migration's downgrade undoes it: down to the first and back up, the schema is
    again exactly the models'."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        config = _alembic_config(engine)
        command.downgrade(config, "0001")
        command.upgrade(config, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"include_object": lambda obj, *_: built_on(obj, conn.dialect.name)},
            )
            assert compare_metadata(context, every_table()) == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_keeps_growing_columns_in_brin_indexes(postgres_schema_url):
    """Alembic's comparison does not see an index's method: check the BRIN indexes (and
    that they summarise new pages themselves) in the catalogue."""
    engine = make_engine(postgres_schema_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            definitions = dict(
                conn.execute(
                    sa.text(
                        "SELECT indexname, indexdef FROM pg_indexes "
                        "WHERE schemaname = current_schema() AND indexdef LIKE '%USING brin%'"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert sorted(definitions) == [
        "ix_cc_deployments_run_id_arrived_at",
        "ix_cc_incidents_run_id_created_at",
        "ix_rms_involvements_run_id",
        "ix_rms_occurrences_run_id",
    ]
    assert all("autosummarize='on'" in definition for definition in definitions.values())


def test_every_snapshot_field_has_a_column():
    columns = set(table_of(Snapshot).columns.keys())
    assert set(SNAPSHOT_FIELDS) <= columns


@pytest.mark.postgres
def test_postgresql_text_compares_bytewise_and_the_downgrade_undoes_it(postgres_schema_url):
    """Alembic's comparison does not see a column's collation either: check it in the
    catalogue, for every text column the models have, down to 0005 and up again."""
    text_columns = sorted(
        (table.name, column.name)
        for table in every_table().tables.values()
        for column in table.columns
        if isinstance(column.type.dialect_impl(postgresql_dialect), sa.String)
    )
    engine = make_engine(postgres_schema_url)

    def collations() -> dict[tuple[str, str], str | None]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_name, column_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name <> 'alembic_version' "
                    "AND data_type IN ('character varying', 'text')"
                )
            )
            return {(table, column): collation for table, column, collation in rows}

    try:
        migrate(engine)
        assert sorted(collations()) == text_columns
        assert set(collations().values()) == {"C"}
        config = _alembic_config(engine)
        command.downgrade(config, "0005")
        assert set(collations().values()) == {None}  # the database's default
        with engine.begin() as conn:
            # A table of the force's own, beside the tracker's; and a length a DBA gave.
            conn.execute(sa.text("CREATE TABLE force_notes (note varchar(20))"))
            conn.execute(sa.text("ALTER TABLE units ALTER COLUMN name TYPE varchar(200)"))
        command.upgrade(config, "head")
        ours = collations()
        assert ours.pop(("force_notes", "note")) is None  # left alone
        assert set(ours.values()) == {"C"}
        with engine.connect() as conn:
            length = conn.execute(
                sa.text(
                    "SELECT character_maximum_length FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'units' "
                    "AND column_name = 'name'"
                )
            ).scalar_one()
        assert length == 200
    finally:
        engine.dispose()
