"""The app's handles on the database and the rule files, for views and policy functions.

The engine lives in `app.extensions["tt"]`; criteria and routing are read from the rules
folder when asked (a parsed copy is reused while the files are unchanged), so a steering-group
edit shows without a restart and no worker holds state another lacks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app, g

from engine.people.own_record import person_exposure
from engine.rules.active import last_good
from engine.rules.pack import Routing, RulePack, load_pack, rule_files
from engine.scoring.criteria import Criteria, load_criteria
from engine.yamlfile import RuleFileError
from trauma_tracker.settings import Settings

_parsed: dict[tuple, Any] = {}  # a cache of parsed files by (kind, folder, mtimes): no state


def engine() -> sa.Engine:
    """The SQLAlchemy engine of the running app."""
    return current_app.extensions["tt"]


def reads() -> sa.Connection:
    """One connection for the request's reads (who is signed in, whether they supervise
    anyone, the Me page's figures ...), opened on first use and closed when the request ends:
    each read on a connection of its own cost a pool checkout and a rollback, a fifth of a
    page. Writes take connections of their own (engine().begin())."""
    if "tt_reads" not in g:
        # Each read its own transaction (as on connections of their own): a read that fails
        # can't leave the rest of the request's reads in an aborted transaction.
        g.tt_reads = engine().connect().execution_options(isolation_level="AUTOCOMMIT")
    return g.tt_reads


def close_reads(_error: BaseException | None = None) -> None:
    """Teardown: give the request's read connection back to the pool (rolling back)."""
    connection = g.pop("tt_reads", None)
    if connection is not None:
        connection.close()


def settings() -> Settings:
    """The Settings the app was made with."""
    return current_app.extensions["tt_settings"]


def now() -> datetime:
    """The current time (UTC); tests of fixed moments set app.config["TT_CLOCK"]."""
    clock = current_app.config.get("TT_CLOCK")
    return clock() if clock else datetime.now(UTC)


def exposure(staff_id: str) -> dict[str, Any]:
    """One person's record now, in the `exposure --json` shape, for a page or the API.

    :raise engine.people.own_record.UnknownPerson: no such staff id."""
    return person_exposure(
        reads(), staff_id, now(), history_days=settings().history_days, criteria=criteria()
    )


def _stamp(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.exists())


def _forget(kind: str) -> None:
    for key in [k for k in _parsed if k[0] == kind]:
        del _parsed[key]


def criteria() -> Criteria:
    """The criteria file's categories and weights. :raise RuleFileError: the file is broken."""
    folder = settings().rules_dir
    key = ("criteria", _stamp([folder / "criteria.yaml"]))
    if key not in _parsed:
        _forget("criteria")
        _parsed[key] = load_criteria(folder)[0]
    return _parsed[key]


def rule_pack() -> RulePack:
    """The intervention rules and routing in force: the files when valid, else the last good
    stored pack. :raise RuleFileError: the files are broken and nothing good was stored."""
    folder = settings().rules_dir
    try:
        key = ("pack", _stamp([folder / "routing.yaml", *rule_files(folder)]))
    except OSError:
        key = ("pack", str(folder), "unreadable")
    if key not in _parsed:
        try:
            pack = load_pack(folder)
            _forget("pack")
            _parsed[key] = pack
        except RuleFileError:
            with engine().connect() as conn:
                fallback = last_good(conn)
            if fallback is None:
                raise
            return fallback  # not cached: the files may be fixed at any moment
    return _parsed[key]


def routing() -> Routing:
    """Who hears about alerts (routing.yaml), for escalation times and conversation requests."""
    return rule_pack().routing
