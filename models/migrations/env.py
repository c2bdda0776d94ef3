"""Alembic environment: the engine comes from models.db, never from a config file."""

from alembic import context

from models import every_table
from models.feeds import built_on

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=every_table(),
        render_as_batch=connection.dialect.name == "sqlite",
        # Autogenerate compares only what this database is meant to have.
        include_object=lambda obj, *_: built_on(obj, connection.dialect.name),
    )
    context.run_migrations()
