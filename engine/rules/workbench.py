"""The steering group's workbench: what runs, what the files on disk say, and what would change.

Reads and checks rule files; never writes one. The rules in force are the files when they
are valid, else the last good stored ruleset (engine.rules.active), and then the files'
problems (`FILE:LINE: message`) are what the web app's banner shows. When a rule "went live"
is the first time a stored ruleset holding that rule at that version was loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.rules.active import last_good
from engine.rules.backtest import (
    STEPS,
    BacktestReport,
    backtest,
    score_unevaluated,
    scoring_problem,
    step_times,
)
from engine.rules.pack import (
    ROUTING_FILE,
    RulePack,
    content_hash,
    load_pack,
    rule_files,
)
from engine.rules.testing import TestReport, run_tests
from engine.sqltime import read_datetime
from engine.yamlfile import Problem, RuleFileError
from models import RulesetVersion, table_of

versions_t = table_of(RulesetVersion)

CRITERIA_FILE = "criteria.yaml"
# What one web request replays. On a force the size of Avon and Somerset a backtest costs
# about 5 s, and then about 0.1 s a day or 0.25 s a week looked at (measured: 92 days 12 s,
# 53 weeks 18 s; a comparison of 26 weeks, two backtests, 25 s). These keep a comparison well
# within a web worker's 30 s; longer periods are for `trauma-tracker rules backtest`.
MAX_STEPS = {"day": 62, "week": 20}
STEP_WORDS = {"day": "days", "week": "weeks"}
DEFINITION_KEYS = (
    "title",
    "severity",
    "on",
    "when",
    "notify",
    "cooldown",
    "follow_up",
    "max_age",
)


class WorkbenchError(ValueError):
    """A request the workbench can't run (a bad period or folder), naming the field."""


def watched_files(rules_dir: Path) -> list[Path]:
    """The files whose changes can change the problems (for a caller's cache key)."""
    try:
        rules = rule_files(rules_dir)
    except OSError:
        rules = []
    return [rules_dir / ROUTING_FILE, rules_dir / CRITERIA_FILE, *rules]


def file_problems(rules_dir: Path) -> tuple[RulePack | None, list[Problem]]:
    """The files' pack (None when broken) and every problem in the folder, criteria first."""
    problems: list[Problem] = []
    if (rules_dir / CRITERIA_FILE).is_file():
        from engine.scoring.criteria import load_criteria

        try:
            load_criteria(rules_dir)
        except RuleFileError as error:
            problems.extend(error.problems)
    pack = None
    try:
        pack = load_pack(rules_dir)
    except RuleFileError as error:
        problems.extend(error.problems)
    except OSError as error:
        problems.append(Problem(str(rules_dir), None, f"can't be read: {error.strerror}"))
    return pack, problems


@dataclass
class RulesetStatus:
    """What runs and why: the files' pack, or the last good one while the files are broken."""

    rules_dir: str
    files_pack: RulePack | None
    running: RulePack | None
    problems: list[Problem] = field(default_factory=list)
    running_since: datetime | None = None

    @property
    def fallback(self) -> bool:
        """The files are broken and an older good ruleset is running (the banner's case)."""
        return self.files_pack is None and self.running is not None

    @property
    def problem_lines(self) -> list[str]:
        """Each problem as FILE:LINE: message, FILE relative to the rules folder."""
        prefix = self.rules_dir.rstrip("/") + "/"
        return [str(problem).removeprefix(prefix) for problem in self.problems]


def _stored(conn: sa.Connection) -> list[Any]:
    return conn.execute(
        sa.select(
            versions_t.c.ruleset_hash,
            versions_t.c.rules,
            versions_t.c.first_loaded_at,
            versions_t.c.last_active_at,
        ).order_by(versions_t.c.first_loaded_at)
    ).all()


def status(conn: sa.Connection, rules_dir: Path) -> RulesetStatus:
    """The folder's state against what is stored; writes nothing (evaluation stores packs)."""
    pack, problems = file_problems(rules_dir)
    running = pack if pack is not None else last_good(conn)
    since = None
    if running is not None:
        since = conn.execute(
            sa.select(sa.func.min(versions_t.c.first_loaded_at)).where(
                versions_t.c.ruleset_hash == running.ruleset_hash
            )
        ).scalar()
    return RulesetStatus(str(rules_dir), pack, running, problems, read_datetime(since))


def stored_count(conn: sa.Connection) -> int:
    """How many rulesets are stored (a new one means a new version went live)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(versions_t)).scalar_one())


def live_since(conn: sa.Connection) -> dict[tuple[str, str], datetime]:
    """(rule id, version) -> when a stored ruleset holding it was first loaded."""
    found: dict[tuple[str, str], datetime] = {}
    for row in _stored(conn):
        for definition in json.loads(row.rules):
            key = (str(definition.get("id")), content_hash(definition, 12))
            found.setdefault(key, read_datetime(row.first_loaded_at))
    return found


def test_summary(pack: RulePack) -> tuple[TestReport, dict[str, dict[str, Any]]]:
    """Run every rule's tests; per rule: cases, passed, and each failure as text."""
    report = run_tests(pack)
    per_rule = {
        rule.id: {"cases": len(rule.tests), "passed": len(rule.tests), "failures": []}
        for rule in pack.rules
    }
    for failure in report.failures:
        entry = per_rule[failure.rule.id]
        entry["passed"] -= 1
        entry["failures"].append(str(failure))
    return report, per_rule


def rule_listing(conn: sa.Connection, rules_dir: Path) -> dict[str, Any]:
    """Every running rule: title, version, when it went live, and its tests' state (run
    now); with the folder's status (problems, fallback)."""
    state = status(conn, rules_dir)
    since = live_since(conn)
    rules = []
    report = None
    if state.running is not None:
        # A stored ruleset keeps what the rules do, not their files or tests.
        report, per_rule = test_summary(state.running) if not state.fallback else (None, {})
        for rule in state.running.rules:
            tests = per_rule.get(rule.id)
            rules.append(
                {
                    "id": rule.id,
                    "title": rule.title,
                    "severity": rule.severity,
                    "on": rule.on,
                    "file": Path(rule.file).name if rule.file and not state.fallback else None,
                    "version": rule.version,
                    "live_since": since.get((rule.id, rule.version)),
                    "tests": tests,
                }
            )
    return {
        "status": state,
        "rules": rules,
        "tests_ok": report.ok if report is not None else None,
        "disagreements": list(report.disagreements) if report is not None else [],
    }


# --- backtests and comparisons ---------------------------------------------------------------


def check_period(start: date, end: date, step: str) -> None:
    """:raise WorkbenchError: a period that runs backwards, or longer than a request allows."""
    if step not in STEPS:
        raise WorkbenchError(f"step: must be one of {', '.join(STEPS)}")
    if end < start:
        raise WorkbenchError(f"to: {end.isoformat()} is before from: {start.isoformat()}")
    most = MAX_STEPS[step]
    if len(step_times(start, end, step)) > most:
        last = start + (most - 1) * STEPS[step]
        raise WorkbenchError(
            f"to: at most {most} {STEP_WORDS[step]} here, so no later than "
            f"{last.isoformat()} (for a longer backtest, run `trauma-tracker rules backtest`)"
        )


def run_backtest(
    conn: sa.Connection,
    pack: RulePack,
    start: date,
    end: date,
    step: str = "week",
    *,
    criteria=None,
    history_days: int | None = None,
) -> BacktestReport:
    """`rules backtest` for one pack; the indicators' temporary work is rolled back. On a
    database never evaluated (every rule would count 0), the stored records are scored with
    `criteria` first, as `rules backtest` does, inside the same rolled-back work."""
    check_period(start, end, step)
    try:
        if criteria is not None and scoring_problem(conn) is not None:
            score_unevaluated(conn, criteria, start, history_days)
        return backtest(conn, pack, start, end, step=step)
    finally:
        conn.rollback()


def months_between(start: date, end: date) -> list[str]:
    """YYYY-MM of every calendar month from `start` to `end`."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return months


def _lines(value: Any, indent: str = "") -> list[str]:
    """A definition's value as short lines of text, as YAML would show it (a condition tree
    as nested lines, one condition a line)."""
    if isinstance(value, Mapping):
        lines = []
        for key, item in value.items():
            lines.append(f"{indent}{key}:")
            lines.extend(_lines(item, indent + "  "))
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{indent}none"]
        return [line for item in value for line in _lines(item, indent + "- ")]
    return [f"{indent}{'none' if value is None else value}"]


def side_by_side(live: RulePack | None, candidate: RulePack) -> list[dict[str, Any]]:
    """Per rule id in either pack: added, removed, changed or the same, and each definition
    key's text on both sides with whether it changed."""
    live_rules = dict(live.by_id) if live else {}
    rows = []
    for rule_id in sorted(set(live_rules) | set(candidate.by_id)):
        before, after = live_rules.get(rule_id), candidate.by_id.get(rule_id)
        if before is None:
            change = "added"
        elif after is None:
            change = "removed"
        else:
            change = "same" if before.version == after.version else "changed"
        fields = []
        for key in DEFINITION_KEYS:
            left = _lines(before.definition.get(key)) if before else []
            right = _lines(after.definition.get(key)) if after else []
            fields.append({"key": key, "live": left, "candidate": right, "changed": left != right})
        rows.append(
            {
                "id": rule_id,
                "change": change,
                "live_version": before.version if before else None,
                "candidate_version": after.version if after else None,
                "title": (after or before).title,
                "fields": fields,
            }
        )
    return rows


def check_candidate_folder(text: str, live: Path) -> Path:
    """A folder that looks like a rules folder, in the folder that holds the `live` rules
    folder (a changed copy beside it): the form reads only there, so it can't be used to look
    at other files on the server. :raise WorkbenchError: not one."""
    text = (text or "").strip()
    if not text or "\x00" in text:
        raise WorkbenchError("folder: give the full path of a rules folder on the server")
    folder = Path(text)
    if not folder.is_absolute():
        raise WorkbenchError("folder: give the full path, starting with /")
    home = live.resolve().parent
    if not folder.resolve().is_relative_to(home):
        raise WorkbenchError(
            f"folder: give a copy of the rules folder beside the live one, inside {home}"
        )
    if not folder.is_dir():
        raise WorkbenchError(f"folder: {folder} is not a folder on the server")
    if not (folder / ROUTING_FILE).is_file() and not (folder / "interventions").is_dir():
        raise WorkbenchError(f"folder: {folder} has no routing.yaml or interventions folder")
    return folder
