"""Shared fixtures: every database test runs on SQLite and, where reachable, PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database of each kind the suite runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    return request.getfixturevalue("postgres_schema_url")
