"""Fixtures for the service: a migrated database with a rules folder, settings, jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.db import make_engine, migrate
from tests.forcedata import write_rules
from trauma_tracker.settings import Settings


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    return write_rules(tmp_path / "rules")


@pytest.fixture
def drop_dir(tmp_path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


@pytest.fixture
def service_db(database_url):
    """(url, engine) of a migrated database."""
    engine = make_engine(database_url)
    migrate(engine)
    yield database_url, engine
    engine.dispose()


@pytest.fixture
def settings(service_db, rules_dir, drop_dir) -> Settings:
    url, _ = service_db
    return Settings(database_url=url, rules_dir=rules_dir, drop_dirs=(drop_dir,), poll_seconds=1)
