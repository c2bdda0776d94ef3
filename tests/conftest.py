"""Shared fixtures: every database test runs on SQLite and, where reachable, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from models.db import make_engine, migrate
from tests.pgsnapshot import Snapshot, schema_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_HINT = (
    "PostgreSQL not reachable at {url}: start a server or set TT_TEST_POSTGRES_URL to a "
    "database this test run may create schemas in (e.g. "
    "postgresql+psycopg://postgres@127.0.0.1:5432/test); set TT_TEST_POSTGRES=require to make "
    "this a failure instead of a skip"
)


def _postgres_url() -> str:
    return os.environ.get("TT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


_reachable: dict[str, bool] = {}


def postgres_available(url: str) -> bool:
    if url not in _reachable:
        try:
            engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            engine.dispose()
            _reachable[url] = True
        except Exception:
            _reachable[url] = False
    return _reachable[url]


def pytest_report_header(config) -> list[str]:
    """Say at the start which databases this run uses, and how to add PostgreSQL if it is not."""
    url = _postgres_url()
    required = os.environ.get("TT_TEST_POSTGRES") == "require"
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if postgres_available(url):
        return [f"databases: SQLite and PostgreSQL ({shown}){' (required)' if required else ''}"]
    if required:
        return [f"databases: SQLite; PostgreSQL REQUIRED but not reachable at {shown}"]
    return [
        f"databases: SQLite only; PostgreSQL tests skip: none reachable at {shown} "
        "(set TT_TEST_POSTGRES_URL)"
    ]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL to a database the tests may use; skips (or fails, if required)."""
    url = _postgres_url()
    if not postgres_available(url):
        message = POSTGRES_HINT.format(url=url)
        if os.environ.get("TT_TEST_POSTGRES") == "require":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def new_postgres_schema(postgres_url):
    """Makes fresh PostgreSQL schemas, each as a URL whose connections use it; all are
    dropped afterwards."""
    admin = sa.create_engine(postgres_url)
    made: list[str] = []

    def make() -> str:
        schema = f"tt_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
        made.append(schema)
        sep = "&" if "?" in postgres_url else "?"
        return f"{postgres_url}{sep}options=-csearch_path%3D{schema}"

    yield make
    with admin.begin() as conn:
        for schema in made:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    admin.dispose()


@pytest.fixture
def postgres_schema_url(new_postgres_schema):
    """A PostgreSQL URL whose connections use a fresh schema, dropped afterwards."""
    return new_postgres_schema()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path):
    """An empty database (no schema) of each kind the suite runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    return request.getfixturevalue("postgres_schema_url")


class MigratedDatabases:
    """Databases migrated to the current schema, made once a session and handed to each test
    as a copy: a migration is ten revisions of DDL, most of a small test's time.

    SQLite: a migrated file, copied. PostgreSQL: a pool of migrated schemas; after a test its
    schema gets back the rows it had just after migrating and returns to the pool, unless the
    test changed the schema itself (tables, columns, revision): then it is dropped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite_template: Path | None = None
        self.admin: sa.Engine | None = None
        self.seed: Snapshot | None = None
        self.free: list[str] = []
        self.made: list[str] = []

    def sqlite(self, path: Path) -> str:
        if self.sqlite_template is None:
            template = self.folder / "migrated.sqlite"
            engine = make_engine(f"sqlite:///{template}")
            migrate(engine)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the one file
            engine.dispose()
            self.sqlite_template = template
        shutil.copyfile(self.sqlite_template, path)
        return f"sqlite:///{path}"

    def take_postgresql(self, postgres_url: str) -> str:
        if self.admin is None:
            self.admin = sa.create_engine(postgres_url)
        if self.free:
            return schema_url(postgres_url, self.free.pop())
        schema = f"tt_m{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        self.made.append(schema)
        engine = make_engine(schema_url(postgres_url, schema))
        migrate(engine)
        engine.dispose()
        if self.seed is None:
            self.seed = Snapshot(self.admin, schema)
        return schema_url(postgres_url, schema)

    def give_back_postgresql(self, url: str) -> None:
        schema = url.rsplit("application_name=", 1)[1]
        if self.seed.restore(schema):
            self.free.append(schema)
            return
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        self.made.remove(schema)

    def close(self) -> None:
        if self.admin is None:
            return
        if self.seed is not None:
            self.seed.drop()
        with self.admin.begin() as conn:
            for schema in self.made:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory):
    databases = MigratedDatabases(tmp_path_factory.mktemp("migrated"))
    yield databases
    databases.close()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path, migrated_databases):
    """A database of each kind the suite runs on, migrated to the current schema and holding
    nothing else (`empty_database_url` for one with no schema at all)."""
    if request.param == "sqlite":
        yield migrated_databases.sqlite(tmp_path / "tracker.sqlite")
        return
    url = migrated_databases.take_postgresql(request.getfixturevalue("postgres_url"))
    yield url
    migrated_databases.give_back_postgresql(url)
