"""Which ruleset runs: the files when they are valid, else the last good version.

A bad edit never replaces a good ruleset. Every pack that loads cleanly is stored (for the
fallback, and so `audit replay` can re-run old decisions); when the files are broken,
evaluation goes on with the newest stored pack and the problems are reported (CLI, log, and
the web app's banner through `ActiveRuleset.problems`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.rules.pack import RulePack, canonical_json, load_pack, pack_from_definitions
from engine.yamlfile import Problem, RuleFileError
from models import RulesetVersion, table_of

log = logging.getLogger(__name__)
versions_t = table_of(RulesetVersion)


class NoValidRuleset(Exception):
    """The rule files are broken and no good version was ever stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("no valid ruleset: " + "; ".join(str(p) for p in problems))


@dataclass
class ActiveRuleset:
    pack: RulePack
    problems: list[Problem] = field(default_factory=list)  # why the files were not used

    @property
    def fallback(self) -> bool:
        return bool(self.problems)


def remember(conn: sa.Connection, pack: RulePack, now: datetime) -> None:
    """Store `pack` (once per content) and mark it as the newest one in use.

    Two evaluations may load the same new pack at once (the scheduler's and a person's
    opt-in, or two service instances): the insert gives way to the other's row, which is
    then marked instead.
    """
    key = (versions_t.c.ruleset_hash == pack.ruleset_hash) & (
        versions_t.c.routing_hash == pack.routing.hash
    )
    if conn.execute(versions_t.update().where(key).values(last_active_at=now)).rowcount:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(versions_t)
        .values(
            ruleset_hash=pack.ruleset_hash,
            routing_hash=pack.routing.hash,
            rules=canonical_json(pack.definitions()),
            routing=canonical_json(dict(pack.routing.definition)),
            source=pack.source,
            first_loaded_at=now,
            last_active_at=now,
        )
        .on_conflict_do_nothing()
    ).rowcount
    if not inserted:
        conn.execute(versions_t.update().where(key).values(last_active_at=now))


def last_good(conn: sa.Connection) -> RulePack | None:
    row = conn.execute(
        sa.select(versions_t).order_by(versions_t.c.last_active_at.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return pack_from_definitions(json.loads(row.rules), json.loads(row.routing), row.source)


def _report(problems: list[Problem], using: RulePack | None) -> None:
    for problem in problems:
        log.error("rule file problem: %s", problem)
    if using is not None:
        log.error("rule files not used; still running ruleset %s", using.ruleset_hash)


def load_active(conn: sa.Connection, rules_dir: Path, now: datetime) -> ActiveRuleset:
    """The files' pack (stored as the newest good one), or the last good one with the problems.

    :raise NoValidRuleset: the files are broken and nothing good was ever stored.
    """
    try:
        pack = load_pack(rules_dir)
    except RuleFileError as error:
        fallback = last_good(conn)
        _report(error.problems, fallback)
        if fallback is None:
            raise NoValidRuleset(error.problems) from None
        return ActiveRuleset(fallback, error.problems)
    remember(conn, pack, now)
    return ActiveRuleset(pack)


class RulesetKeeper:
    """A long-running process's ruleset: reloaded from the files, replaced only by a valid one."""

    def __init__(self, rules_dir: Path):
        self.rules_dir = rules_dir
        self.active: ActiveRuleset | None = None

    def refresh(self, conn: sa.Connection, now: datetime) -> ActiveRuleset:
        try:
            pack = load_pack(self.rules_dir)
        except RuleFileError as error:
            running = self.active.pack if self.active else last_good(conn)
            _report(error.problems, running)
            if running is None:
                raise NoValidRuleset(error.problems) from None
            self.active = ActiveRuleset(running, error.problems)
            return self.active
        remember(conn, pack, now)
        self.active = ActiveRuleset(pack)
        return self.active
