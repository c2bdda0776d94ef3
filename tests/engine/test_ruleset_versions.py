"""Storing the running ruleset when two evaluations load the same new pack at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.rules.active import remember
from engine.rules.pack import load_pack
from models import RulesetVersion, table_of
from models.db import make_engine, migrate

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_two_evaluations_storing_the_same_new_pack_both_succeed(database_url):
    """The second insert waits for the first transaction and then gives way to its row."""
    engine = make_engine(database_url)
    migrate(engine)
    pack = load_pack(RULES)
    first_at = datetime(2026, 6, 1, 9, tzinfo=UTC)
    errors: list[BaseException] = []
    try:
        with engine.connect() as first:
            first.begin()
            remember(first, pack, first_at)

            def second() -> None:
                try:
                    with engine.begin() as conn:
                        remember(conn, pack, first_at + timedelta(minutes=1))
                except BaseException as error:  # reported below, not swallowed
                    errors.append(error)

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(timeout=1)  # blocked on the first's uncommitted row, or done
            first.commit()
            thread.join(timeout=60)
        assert not thread.is_alive()
        assert errors == []
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table_of(RulesetVersion))).all()
        assert len(rows) == 1
        assert rows[0].ruleset_hash == pack.ruleset_hash
    finally:
        engine.dispose()
