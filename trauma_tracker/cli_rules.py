"""The rules, alerts and audit commands (CONTRACT section 3), registered on `main` in cli.py.

Exit codes as everywhere: 0 success; 1 the command ran and found a problem (invalid rules,
failing rule tests, a broken audit chain, a replay that differs); 2 bad usage or input.
The audit key comes from the settings (TT_AUDIT_KEY or TT_AUDIT_KEY_FILE).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click

from engine import alerts as alert_ops
from engine import audit as audit_ops
from engine.rules.active import NoValidRuleset, last_good, load_active
from engine.rules.backtest import backtest as run_backtest
from engine.rules.backtest import compare
from engine.rules.pack import load_pack
from engine.rules.testing import run_tests
from engine.yamlfile import RuleFileError

LONDON = ZoneInfo("Europe/London")


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"trauma-tracker: {message}", err=True)
    sys.exit(code)


def audit_key(obj: Any) -> bytes | None:
    """The checkpoint signing key from the settings (TT_AUDIT_KEY or TT_AUDIT_KEY_FILE)."""
    return obj.settings.audit_key_bytes


def _moment(text: str | None) -> datetime:
    """ISO 8601; without an offset it is Europe/London local time (CONTRACT section 1)."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not a date or time (use ISO 8601, e.g. 2025-06-02T09:00Z)")
    return (moment if moment.tzinfo else moment.replace(tzinfo=LONDON)).astimezone(UTC)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not a date (use YYYY-MM-DD)")


def _rules_dir(obj: Any, directory: Path | None) -> Path:
    return directory if directory is not None else obj.settings.rules_dir


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _active(obj: Any, conn):
    try:
        active = load_active(conn, obj.settings.rules_dir, datetime.now(UTC))
    except NoValidRuleset as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        _fail("no valid ruleset: fix the rule files (see above)")
    for problem in active.problems:
        click.echo(f"warning: {problem}", err=True)
    if active.fallback:
        click.echo(f"warning: still using ruleset {active.pack.ruleset_hash}", err=True)
    return active


# --- rules -----------------------------------------------------------------------------------

DIRECTORY = click.argument("directory", required=False, type=click.Path(path_type=Path))


@click.group("rules")
def rules() -> None:
    """Validate, test and backtest the intervention rules."""


@rules.command("validate")
@DIRECTORY
@click.pass_obj
def validate(obj: Any, directory: Path | None) -> None:
    """Check every rule file; print each problem as FILE:LINE: message (exit 1 if any)."""
    folder = _rules_dir(obj, directory)
    problems = []
    try:
        pack = load_pack(folder)
    except RuleFileError as error:
        problems = error.problems
    criteria = folder / "criteria.yaml"
    if criteria.is_file():
        from engine.criteria import load_criteria

        try:
            load_criteria(folder)
        except RuleFileError as error:
            problems = [*error.problems, *problems]
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) in {folder}", err=True)
        sys.exit(1)
    click.echo(f"{folder}: {len(pack.rules)} rules valid (ruleset {pack.ruleset_hash})")


@rules.command("test")
@DIRECTORY
@click.pass_obj
def test(obj: Any, directory: Path | None) -> None:
    """Run every rule file's tests through the engine; print each failure (exit 1 if any)."""
    try:
        pack = load_pack(_rules_dir(obj, directory))
    except RuleFileError as error:
        for problem in error.problems:
            click.echo(str(problem))
        sys.exit(1)
    report = run_tests(pack)
    for failure in report.failures:
        click.echo(str(failure))
    for disagreement in report.disagreements:
        click.echo(f"engine and explanation disagree: {disagreement}")
    click.echo(f"{report.passed} passed, {len(report.failures)} failed")
    if not report.ok:
        sys.exit(1)


def _print_backtest(title: str, report) -> None:
    click.echo(f"{title}: ruleset {report.ruleset}, {report.steps} {report.step}s")
    for rule, count in sorted(report.alerts.items()):
        click.echo(f"  {rule}: {count} alerts")
        for month, n in sorted(report.by_month[rule].items()):
            click.echo(f"    {month}: {n}")
        units = ", ".join(f"{unit} {n}" for unit, n in sorted(report.by_unit[rule].items()))
        if units:
            click.echo(f"    by unit: {units}")


@rules.command("backtest")
@DIRECTORY
@click.option("--from", "start", required=True, help="First day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, help="Last day, YYYY-MM-DD.")
@click.option("--step", type=click.Choice(["day", "week"]), default="week", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def backtest(obj: Any, directory: Path | None, start: str, end: str, step: str, as_json: bool):
    """What the rules would have opened over stored history; creates no alert.

    Given a folder that differs from the running ruleset, both are run and compared.
    """
    first, last = _day(start), _day(end)
    if last < first:
        _fail("--to is before --from")
    try:
        candidate = load_pack(_rules_dir(obj, directory))
    except RuleFileError as error:
        for problem in error.problems:
            click.echo(str(problem))
        sys.exit(1)
    engine = obj.current_engine()
    with engine.connect() as conn:
        running = None
        if directory is not None:
            running = last_good(conn)
            if running is None:
                try:
                    running = load_pack(obj.settings.rules_dir)
                except RuleFileError:
                    running = None
            if running is not None and running.ruleset_hash == candidate.ruleset_hash:
                running = None
        report = run_backtest(conn, candidate, first, last, step=step)
        before = run_backtest(conn, running, first, last, step=step) if running else None
        conn.rollback()  # a backtest writes nothing; the indicators' temporary tables go too
    changes = compare(before, report) if before else None
    if as_json:
        _print_json(
            {
                "candidate": report.to_json(),
                "running": before.to_json() if before else None,
                "changes": changes,
            }
        )
        return
    _print_backtest("candidate" if before else "rules", report)
    if before is not None and changes is not None:
        _print_backtest("running", before)
        click.echo("change in alerts (candidate - running):")
        for rule, row in changes.items():
            click.echo(f"  {rule}: {row['running']} -> {row['candidate']} ({row['change']:+d})")


# --- alerts ----------------------------------------------------------------------------------

STATUS = click.Choice(["open", "acknowledged", "resolved", "unresolved", "all"])


@click.group("alerts", invoke_without_command=True)
@click.option("--status", type=STATUS, default="open", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def alerts(ctx: click.Context, status: str, as_json: bool) -> None:
    """List alerts; acknowledge or resolve one; run the escalation and follow-up steps."""
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.current_engine().connect() as conn:
        found = alert_ops.list_alerts(conn, status)
    if as_json:
        _print_json(found)
        return
    for a in found:
        to = ", ".join(a["recipients"])
        click.echo(
            f"{a['alert_id']:>6}  {a['opened_at'][:16]}  {a['status']:<12} {a['severity']:<6} "
            f"{a['staff_id']:<10} {a['rule_id']}  -> {to}"
        )
    if not found:
        click.echo(f"no {status if status != 'all' else ''} alerts".replace("  ", " "))


def _change(obj: Any, action, *args: Any) -> None:
    with obj.current_engine().begin() as conn:
        try:
            action(conn, *args)
        except alert_ops.AlertError as error:
            _fail(str(error), 1)


@alerts.command("acknowledge")
@click.argument("alert_id", type=int)
@click.option("--by", "actor", required=True, help="Who acknowledges (staff id or name).")
@click.option("--note", help="Free text.")
@click.pass_obj
def acknowledge(obj: Any, alert_id: int, actor: str, note: str | None) -> None:
    """Mark an open alert as acknowledged."""
    _change(obj, alert_ops.acknowledge, alert_id, actor, datetime.now(UTC), note)
    click.echo(f"alert {alert_id} acknowledged by {actor}")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--by", "actor", required=True, help="Who resolves (staff id or name).")
@click.option("--outcome", type=click.Choice(alert_ops.OUTCOMES), required=True)
@click.option("--note", help="Free text about the conversation (no health details).")
@click.pass_obj
def resolve(obj: Any, alert_id: int, actor: str, outcome: str, note: str | None) -> None:
    """Close an alert with the outcome of the welfare conversation."""
    _change(obj, alert_ops.resolve, alert_id, actor, outcome, datetime.now(UTC), note)
    click.echo(f"alert {alert_id} resolved by {actor}: {outcome}")


alerts.add_command(acknowledge, "ack")

NOW = click.option("--now", "now_text", help="Run as if at this time (ISO 8601); default now.")


@alerts.command("escalate")
@NOW
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def escalate(obj: Any, now_text: str | None, as_json: bool) -> None:
    """Escalate alerts not acknowledged within routing's escalate.after (a scheduler step)."""
    now = _moment(now_text)
    with obj.current_engine().begin() as conn:
        routing = _active(obj, conn).pack.routing
        done = alert_ops.escalate_overdue(conn, routing, now)
    _print_json({"escalated": done}) if as_json else click.echo(f"{len(done)} alerts escalated")


@alerts.command("follow-ups")
@NOW
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def follow_ups(obj: Any, now_text: str | None, as_json: bool) -> None:
    """Queue the follow-up reminders now due (a scheduler step)."""
    now = _moment(now_text)
    with obj.current_engine().begin() as conn:
        routing = _active(obj, conn).pack.routing
        sent = alert_ops.send_follow_ups(conn, routing, now)
    _print_json({"follow_ups": sent}) if as_json else click.echo(f"{len(sent)} follow-ups queued")


# --- audit -----------------------------------------------------------------------------------


@click.group("audit")
def audit() -> None:
    """Verify the decision log's hash chain, replay a decision, sign checkpoints."""


@audit.command("verify")
@click.option(
    "--checkpoint",
    "exported",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Also check an exported checkpoint file.",
)
@click.pass_obj
def verify(obj: Any, exported: Path | None) -> None:
    """Walk the chain; name the first bad entry and exit 1 if anything was changed."""
    key = audit_key(obj)
    with obj.current_engine().connect() as conn:
        result = audit_ops.verify(conn, key)
        problem = result.problem
        if problem is None and exported is not None:
            if key is None:
                _fail("checking a checkpoint file needs TT_AUDIT_KEY or TT_AUDIT_KEY_FILE")
            try:
                document = json.loads(exported.read_text())
            except (OSError, ValueError) as error:
                _fail(f"{exported}: can't read a checkpoint: {error}")
            found = audit_ops.check_export(conn, document, key)
            problem = f"{exported}: {found}" if found else None
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if problem:
        click.echo(f"audit chain broken: {problem}")
        sys.exit(1)
    erased = f", {result.erased} erased on opt-out" if result.erased else ""
    click.echo(f"audit chain intact: {result.entries} decisions{erased}")


@audit.command("replay")
@click.argument("decision")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def replay(obj: Any, decision: str, as_json: bool) -> None:
    """Re-run one decision (its id, or its seq) from its stored input and ruleset."""
    with obj.current_engine().connect() as conn:
        try:
            result = audit_ops.replay(conn, decision)
        except audit_ops.AuditError as error:
            _fail(str(error))
    if as_json:
        _print_json(
            {
                "decision_id": result.decision_id,
                "rule_id": result.rule_id,
                "same": result.same,
                "differences": result.differences,
                "explanation": result.explanation,
            }
        )
    elif result.same:
        where = f"decision {result.decision_id} ({result.rule_id})"
        click.echo(f"{where}: replayed, same outcome and explanation")
    else:
        click.echo(f"decision {result.decision_id} ({result.rule_id}): replay differs")
        for difference in result.differences:
            click.echo(f"  {difference}")
    if not result.same:
        sys.exit(1)


@audit.command("checkpoint")
@click.option(
    "--export",
    "target",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the signed checkpoint to this file (default: print it).",
)
@click.pass_obj
def checkpoint(obj: Any, target: Path | None) -> None:
    """Sign the chain's current end with the audit key (the nightly job)."""
    key = audit_key(obj)
    if key is None:
        _fail("signing a checkpoint needs TT_AUDIT_KEY or TT_AUDIT_KEY_FILE")
    with obj.current_engine().begin() as conn:
        try:
            document = audit_ops.write_checkpoint(conn, key, datetime.now(UTC))
        except audit_ops.AuditError as error:
            _fail(str(error), 1)
    text = json.dumps(document, indent=2)
    if target is None:
        click.echo(text)
    else:
        target.write_text(text + "\n")
        click.echo(f"checkpoint at seq {document['checkpoint']['seq']} written to {target}")


COMMANDS = (rules, alerts, audit)
