"""A pooled PostgreSQL connection the server dropped while it sat idle is replaced before use
(models.db pings a connection idle IDLE_PING_SECONDS or more), and one in use a moment ago is
handed out without a round trip of its own."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from models import db

pytestmark = pytest.mark.postgres


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(postgres_url: str, pid: int) -> None:
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced(postgres_url, monkeypatch):
    engine = db.make_engine(postgres_url)
    first = _backend_pid(engine)
    _terminate(postgres_url, first)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # it has been idle long enough

    second = _backend_pid(engine)  # the ping finds it gone: a new connection, no error

    assert second != first
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_url, monkeypatch):
    """The other side of the bargain: no ping inside the idle period, so a drop in that moment
    reaches the caller (and the pool then discards the connection) rather than being hidden."""
    engine = db.make_engine(postgres_url)
    first = _backend_pid(engine)
    _terminate(postgres_url, first)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)

    with pytest.raises(sa.exc.OperationalError):
        _backend_pid(engine)
    assert _backend_pid(engine) != first  # and the next checkout is a fresh connection
    engine.dispose()
