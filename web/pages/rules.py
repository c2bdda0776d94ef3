"""The steering group's rules workbench: what runs, its tests, backtests, a candidate folder
compared with the live rules, and rule effectiveness from recorded outcomes.

The workbench reads and checks rule files; it never edits them (they stay files under the
steering group's version control). While the files on disk are broken and an older good
ruleset runs, every page shows steering and admin users a banner with the problems
(`validation_banner`, a context processor of this blueprint).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm

from engine.oversight import aggregates, effectiveness
from engine.rules import workbench
from engine.rules.backtest import compare
from engine.sqltime import local_date
from engine.yamlfile import RuleFileError
from web import db
from web.auth import allowed, current_user, has_role
from web.pages import oversight_charts

bp = Blueprint("rules", __name__)

may_use_workbench = has_role("steering")
BANNER_ROLES = ("steering", "admin")
# Worked out again when the files (mtimes) or stored rulesets change: caches, not state.
_banner_cache: dict[tuple, workbench.RulesetStatus] = {}
_listing_cache: dict[tuple, dict] = {}


class RunForm(FlaskForm):
    """A button that runs something (tests, a backtest, a comparison): the CSRF token only;
    the period and folder are read and checked by the view, which names the field."""


def _files_key() -> tuple:
    folder = db.settings().rules_dir
    files = workbench.watched_files(folder)
    return (str(folder), tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists()))


def _status() -> workbench.RulesetStatus:
    """The folder's status, worked out again only when a rule file changes."""
    folder = db.settings().rules_dir
    key = _files_key()
    found = _banner_cache.get(key)
    if found is None:
        with db.engine().connect() as conn:
            found = workbench.status(conn, folder)
        _banner_cache.clear()
        _banner_cache[key] = found
    return found


@bp.app_context_processor
def validation_banner() -> dict:
    """`rule_problems` for base.html's banner: set for steering and admin users while the
    files on disk have problems (the running ruleset is then the last good one)."""
    user = current_user()
    if user is None or not any(user.has(role) for role in BANNER_ROLES):
        return {}
    try:
        state = _status()
    except (OSError, sa.exc.SQLAlchemyError):
        return {}  # an error page must still render; /readyz reports the database
    if not state.problems:
        return {}
    return {"rule_problems": state, "rule_problems_link": user.has("steering")}


def _today() -> date:
    return local_date(db.now())


def _date(name: str, default: date, errors: list) -> date:
    text = (request.values.get(name) or "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append((name, f"Enter the date as year-month-day, for example {default}"))
        return default


def _period(errors: list, default_days: int = 49) -> tuple[date, date]:
    end = _date("to", _today(), errors)
    start = _date("from", end - timedelta(days=default_days), errors)
    if start > end:
        errors.append(("from", "The start date must be on or before the end date"))
    return start, end


def _unit_names() -> dict[str, str]:
    view = aggregates.current_overview(db.engine(), db.now(), trend=False)
    return {u.unit_id: u.name for u in view.hierarchy.units.values()}


def _listing() -> dict:
    """The rules in force with their tests run: again only when a file or the stored
    rulesets change (the tests take a moment, and every steering page view shows them)."""
    with db.engine().connect() as conn:
        key = (_files_key(), workbench.stored_count(conn))
        found = _listing_cache.get(key)
        if found is None:
            found = workbench.rule_listing(conn, db.settings().rules_dir)
            _listing_cache.clear()
            _listing_cache[key] = found
    return found


def _page(**extra):
    listing = _listing()
    today = _today()
    defaults = {
        "from": (today - timedelta(days=49)).isoformat(),
        "to": today.isoformat(),
        "step": "week",
        "folder": "",
    }
    values = {**defaults, **{k: v for k, v in request.form.items() if k in defaults}}
    return render_template(
        "rules/workbench.html",
        listing=listing,
        state=listing["status"],
        form=RunForm(formdata=None),
        values=values,
        errors=extra.pop("errors", []),
        **extra,
    )


@bp.get("/rules")
@allowed(may_use_workbench)
def workbench_page():
    """Every running rule with its title, version, when it went live and its tests' state;
    the folder's problems; the forms to run the tests, a backtest and a comparison."""
    return _page()


@bp.post("/rules/tests")
@allowed(may_use_workbench)
def run_tests():
    """Run every rule file's tests and show each failure with its FILE:LINE (while the
    files are broken, say so: a stored ruleset keeps no tests)."""
    form = RunForm()
    if not form.validate_on_submit():
        return _page(errors=[("tests-run", "The form had expired: press the button again")])
    state = _status()
    if state.files_pack is None:
        message = "The rule files on disk are not valid: fix the problems, then run the tests"
        return _page(errors=[("tests-run", message)])
    report, _ = workbench.test_summary(state.files_pack)
    return _page(test_report=report, anchor="tests")


def _backtest_view(report, start: date, end: date) -> dict:
    # An exposure rule's first step looks back a step, so a month before `start` can appear.
    seen = {m for rule in report.alerts for m in report.by_month[rule]}
    months = sorted(set(workbench.months_between(start, end)) | seen)
    rules = sorted(report.alerts)
    series = [(rule, [report.by_month[rule].get(m, 0) for m in months]) for rule in rules]
    names = _unit_names()
    units = sorted({u for rule in rules for u in report.by_unit[rule]})
    return {
        "report": report,
        "months": months,
        "month_labels": [oversight_charts.month_label(m) for m in months],
        "rules": rules,
        "series": series,
        "chart": oversight_charts.bars(
            months, series, [oversight_charts.month_label(m)[:3] for m in months]
        ),
        "units": [(u, names.get(u, u)) for u in units],
    }


@bp.post("/rules/backtest")
@allowed(may_use_workbench)
def backtest():
    """What the running rules would have opened from `from` to `to` (stepping by day or
    week): alerts per month per rule as a chart and table, and per unit as a table."""
    errors: list = []
    start, end, step = _run_request(errors)
    state = _status()
    if state.running is None:
        errors.append(("run", "No ruleset is running: fix the rule files first"))
    if not errors:
        _check_period(errors, start, end, step)
    if errors:
        return _page(errors=[(f"backtest-{k}", m) for k, m in errors], anchor="backtest")
    with db.engine().connect() as conn:
        report = workbench.run_backtest(conn, state.running, start, end, step, **_scoring())
    return _page(backtest=_backtest_view(report, start, end), anchor="backtest-results")


def _run_request(errors: list) -> tuple[date, date, str]:
    """A backtest or comparison form's period and step, and its CSRF token, each problem
    added to `errors` as (field, message)."""
    form = RunForm()
    start, end = _period(errors)
    step = request.form.get("step", "week")
    if step not in workbench.STEPS:
        errors.append(("step", "Choose day or week"))
    if not form.validate_on_submit():
        errors.append(("run", "The form had expired: press the button again"))
    return start, end, step


def _check_period(errors: list, start: date, end: date, step: str) -> None:
    """Whether one web request may replay this period (workbench.MAX_STEPS)."""
    try:
        workbench.check_period(start, end, step)
    except workbench.WorkbenchError as error:
        errors.append(("to", _sentence(error)))


@bp.post("/rules/compare")
@allowed(may_use_workbench)
def compare_folder():
    """A changed rules folder on the server beside the live rules: each rule's definition
    side by side, the folder's problems and tests, and both backtested over the period."""
    errors: list = []
    start, end, step = _run_request(errors)
    folder = None
    try:
        folder = workbench.check_candidate_folder(
            request.form.get("folder", ""), db.settings().rules_dir
        )
    except workbench.WorkbenchError as error:
        errors.append(("folder", _sentence(error)))
    if not errors:
        _check_period(errors, start, end, step)
    if errors:
        return _page(errors=[(f"compare-{k}", m) for k, m in errors], anchor="compare")
    return _page(comparison=_comparison(folder, start, end, step), anchor="comparison")


def _comparison(folder: Path, start: date, end: date, step: str) -> dict:
    live = _status().running
    candidate, problems = workbench.file_problems(folder)
    found = {
        "folder": str(folder),
        "problems": [str(p) for p in problems],
        "live_hash": live.ruleset_hash if live else None,
    }
    if candidate is None:
        return found
    report, per_rule = workbench.test_summary(candidate)
    found.update(
        candidate_hash=candidate.ruleset_hash,
        rows=workbench.side_by_side(live, candidate),
        tests=report,
        tests_by_rule=per_rule,
    )
    with db.engine().connect() as conn:
        after = workbench.run_backtest(conn, candidate, start, end, step, **_scoring())
        before = (
            workbench.run_backtest(conn, live, start, end, step, **_scoring()) if live else None
        )
    found["changes"] = compare(before, after) if before else None
    found["period"] = (start, end, step)
    return found


def _scoring() -> dict:
    """What a backtest needs to score a database that was never evaluated."""
    return {"criteria": db.criteria(), "history_days": db.settings().history_days}


def _sentence(error: Exception) -> str:
    text = str(error).split(": ", 1)[-1]
    return text[:1].upper() + text[1:]


@bp.get("/rules/effectiveness")
@allowed(may_use_workbench)
def effectiveness_page():
    """Per rule over the alerts opened in a period: opened, acknowledged, median time to
    the first response, outcomes by code, and the share marked false positive."""
    errors: list = []
    start, end = _period(errors, default_days=365)
    report = None
    if not errors:
        try:
            pack = db.rule_pack()
            rules = [(rule.id, rule.title) for rule in pack.rules]
        except RuleFileError:
            rules = []
        report = effectiveness.effectiveness(db.engine(), start, end, rules)
    return render_template(
        "rules/effectiveness.html",
        report=report,
        errors=errors,
        values={"from": request.args.get("from", start.isoformat()),
                "to": request.args.get("to", end.isoformat())},
        outcomes=effectiveness.OUTCOMES,
    )  # fmt: skip
