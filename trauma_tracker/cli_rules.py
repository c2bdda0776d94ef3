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
from typing import Any

import click

from trauma_tracker.cli_options import (
    PROBLEM,
    USAGE,
    Group,
    json_option,
    moment_option,
)
from trauma_tracker.cli_options import fail as _fail

# The engine (and with it the database layer, the rules engine and polars) is imported inside
# each command, so that `trauma-tracker --help` does not wait for it.


def audit_key(obj: Any) -> bytes | None:
    """The checkpoint signing key from the settings (TT_AUDIT_KEY or TT_AUDIT_KEY_FILE)."""
    return obj.settings.audit_key_bytes


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
    from engine.rules.active import NoValidRuleset, load_active

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


@click.group("rules", cls=Group)
def rules() -> None:
    """Validate, test and backtest the intervention rules."""


@rules.command("validate")
@DIRECTORY
@click.pass_obj
def validate(obj: Any, directory: Path | None) -> None:
    """Check every rule file; print each problem as FILE:LINE: message (exit 1 if any)."""
    from engine.rules.pack import load_pack
    from engine.yamlfile import RuleFileError

    folder = _rules_dir(obj, directory)
    problems = []
    try:
        pack = load_pack(folder)
    except RuleFileError as error:
        problems = error.problems
    criteria = folder / "criteria.yaml"
    if criteria.is_file():
        from engine.scoring.criteria import load_criteria

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
    from engine.rules.pack import load_pack
    from engine.rules.testing import run_tests
    from engine.yamlfile import RuleFileError

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


LOAD_LINES = (  # (figure, how the text output says it)
    ("per_100_staff_year", "alerts per 100 staff a year"),
    ("per_supervisor_month_mean", "alerts per supervisor a month, mean"),
    ("per_supervisor_month_p95", "alerts per supervisor a month, 95th percentile"),
    ("wellbeing_per_working_day", "alerts to the wellbeing team per working day"),
    ("share_alerted", "share of staff alerted at least once"),
)


def _print_load(reports: list[tuple[str, Any]]) -> None:
    """The load table: one column per report (candidate, running)."""
    figures = [(title, report.load_figures()) for title, report in reports]
    width = max(len(label) for _, label in LOAD_LINES)
    click.echo("load" + " " * (width - 2) + "".join(f"{t:>12}" for t, _ in figures))
    rows = [("people", "people counted (mean over the steps)"), *LOAD_LINES]
    for key, label in rows:
        cells = []
        for _, load in figures:
            value = load[key]
            cells.append(f"{value:>12.1%}" if key == "share_alerted" else f"{value:>12}")
        click.echo(f"  {label:<{width}}" + "".join(cells))


def _print_backtest(title: str, report) -> None:
    click.echo(
        f"{title}: ruleset {report.ruleset}, {report.start} to {report.end} (both included), "
        f"{report.steps} steps of a {report.step}"
    )
    for rule, count in sorted(report.alerts.items()):
        click.echo(f"  {rule}: {count} alerts")
        for month, n in sorted(report.by_month[rule].items()):
            click.echo(f"    {month}: {n}")
        units = ", ".join(f"{unit} {n}" for unit, n in sorted(report.by_unit[rule].items()))
        if units:
            click.echo(f"    by unit: {units}")


@rules.command("backtest")
@DIRECTORY
@click.option("--from", "start", required=True, help="First day, YYYY-MM-DD (included).")
@click.option("--to", "end", required=True, help="Last day, YYYY-MM-DD (included).")
@click.option("--step", type=click.Choice(["day", "week"]), default="week", show_default=True)
@json_option
@click.pass_obj
def backtest(obj: Any, directory: Path | None, start: str, end: str, step: str, as_json: bool):
    """What the rules would have opened over stored history; creates no alert.

    The period runs from the start of --from to the end of --to (London time), both days
    included. Prints alerts per rule, month and unit, and the load: alerts per 100 staff a
    year, per supervisor a month (mean and 95th percentile), per working day for the
    wellbeing team, and the share of staff alerted. Given a folder that differs from the
    running ruleset, both are run and compared. It replays what `evaluate` scored; on a
    database never evaluated it scores the stored records itself first (with the folder's
    criteria.yaml), keeps nothing, and says so.
    """
    from engine.rules.active import last_good
    from engine.rules.backtest import backtest as run_backtest
    from engine.rules.backtest import compare, score_unevaluated, scoring_problem, unscored_runs
    from engine.rules.pack import load_pack
    from engine.scoring.criteria import load_criteria
    from engine.yamlfile import RuleFileError

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
    notes = []  # on stderr, or in the JSON document's "notes"
    with engine.connect() as conn:
        scored_here = scoring_problem(conn) is not None
        if scored_here:
            try:
                criteria, _ = load_criteria(_rules_dir(obj, directory))
            except RuleFileError as error:
                for problem in error.problems:
                    click.echo(str(problem))
                sys.exit(PROBLEM)
            count = score_unevaluated(conn, criteria, first, obj.settings.history_days)
            notes.append(
                "this database has never been evaluated, so the backtest scored the stored "
                f"records itself ({count} exposures, criteria {criteria.version}); nothing is "
                "kept. Run `trauma-tracker evaluate` to score them for good."
            )
        waiting = unscored_runs(conn)
        if waiting:
            notes.append(
                f"{waiting} ingest run(s) since the last evaluation are not scored yet and "
                "don't count: run `trauma-tracker evaluate` first to include them"
            )
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
                "scored_by_backtest": scored_here,
                "notes": notes,
            }
        )
        return
    for note in notes:
        click.echo(f"note: {note}", err=True)
    _print_backtest("candidate" if before else "rules", report)
    if before is not None and changes is not None:
        _print_backtest("running", before)
        click.echo("change in alerts (candidate - running):")
        for rule, row in changes.items():
            click.echo(f"  {rule}: {row['running']} -> {row['candidate']} ({row['change']:+d})")
    _print_load([("candidate", report), ("running", before)] if before else [("rules", report)])


# --- alerts ----------------------------------------------------------------------------------

STATUS = click.Choice(["open", "acknowledged", "resolved", "unresolved", "all"])
# The listing's options: given before a subcommand (`alerts --status all ack 11`), they are
# carried to `list`, and set aside with a note for a subcommand that acts on one alert.
LISTING_VALUES = ("--status", "--recipient", "--unit", "--rule")


# engine.alerts.lifecycle.OUTCOMES, written here so that `--help` shows them without importing the
# engine (tests/cli/test_startup.py checks that the two agree).
OUTCOMES = ("support_offered", "referred", "declined", "no_action_needed", "false_positive")


class AlertsGroup(Group):
    """`alerts` alone, or with only the listing's options, is `alerts list` (CONTRACT's
    `alerts [--status open|all]`); `alerts --status all ack 11` acknowledges alert 11."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("-h", "--help") for a in args[:1]):
            return super().parse_args(ctx, args)
        index, skip = None, False
        for i, arg in enumerate(args):
            if skip:
                skip = False
            elif arg in LISTING_VALUES:
                skip = True  # its value follows
            elif not arg.startswith("-") and arg in self.commands:
                index = i
                break
        if index is None:
            args = ["list", *args]
        elif index > 0:
            args = self._reorder(ctx, args[:index], args[index], args[index + 1 :])
        return super().parse_args(ctx, args)

    def _reorder(self, ctx, before: list[str], name: str, after: list[str]) -> list[str]:
        command = self.commands[name]
        takes = {option for p in command.params for option in getattr(p, "opts", ())}
        kept: list[str] = []
        dropped: list[str] = []
        target, value_next = kept, False
        for token in before:
            if not value_next:
                option = token.split("=", 1)[0]
                if option == "--json" and option not in takes:
                    raise click.UsageError(
                        f"`alerts {name}` prints no JSON document: leave out --json", ctx
                    )
                listing = option in LISTING_VALUES
                target = dropped if listing and option not in takes else kept
                value_next = listing and "=" not in token
            else:
                value_next = False  # the option's value goes where the option went
            target.append(token)
        if dropped:
            click.echo(
                f"note: {' '.join(dropped)} chooses which alerts are listed; "
                f"`alerts {name}` does not list, so it is left aside",
                err=True,
            )
        return [name, *kept, *after]


@click.group("alerts", cls=AlertsGroup)
def alerts() -> None:
    """List alerts (the default), show one, acknowledge or resolve one, and run the escalation
    and follow-up steps. `alerts` with no subcommand is `alerts list`."""


@alerts.command("list")
@click.option("--status", type=STATUS, default="open", show_default=True)
@click.option("--recipient", metavar="WHO", help="Only alerts sent to this staff id or address.")
@click.option(
    "--unit", metavar="UNIT", help="Only alerts about people in this unit when they opened."
)
@click.option("--rule", "rule_id", metavar="RULE", help="Only alerts of this rule id.")
@json_option
@click.pass_obj
def list_command(
    obj: Any,
    status: str,
    recipient: str | None,
    unit: str | None,
    rule_id: str | None,
    as_json: bool,
) -> None:
    """List alerts, oldest first (default: the open ones)."""
    from engine.alerts import lifecycle as alert_ops

    with obj.current_engine().connect() as conn:
        found = alert_ops.list_alerts(conn, status, recipient=recipient, unit=unit, rule=rule_id)
    if as_json:
        _print_json(found)
        return
    for a in found:
        to = ", ".join(a["recipients"])
        click.echo(
            f"{a['alert_id']:>6}  {_london(a['opened_at'])}  {a['status']:<12} "
            f"{a['severity']:<6} {a['staff_id']:<10} {a['rule_id']}  -> {to}"
        )
    if not found:
        chosen = [f"{status} " if status != "all" else ""]
        filters = [("sent to", recipient), ("in unit", unit), ("of rule", rule_id)]
        chosen += [f" {label} {value}" for label, value in filters if value]
        click.echo(f"no {chosen[0]}alerts{''.join(chosen[1:])}")


def _london(text: str | None) -> str:
    """A stored time as London time; one without an offset is UTC (SQLite keeps it so)."""
    if not text:
        return "-"
    from engine.sqltime import LONDON

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M %Z")


def _escalate_after(obj: Any):
    """routing.yaml's escalate.after, for "overdue"; None when the rule files can't be read."""
    from engine.rules.pack import load_pack
    from engine.yamlfile import RuleFileError

    try:
        return load_pack(obj.settings.rules_dir).routing.escalate_after
    except RuleFileError:
        return None


@alerts.command("show")
@click.argument("alert_id", type=int)
@json_option
@click.pass_obj
def show(obj: Any, alert_id: int, as_json: bool) -> None:
    """One alert: why it fired, whom it went to, its notes and its history."""
    from engine.alerts.view import alert_detail

    engine = obj.current_engine()
    detail = alert_detail(
        engine, alert_id, now=datetime.now(UTC), escalate_after=_escalate_after(obj)
    )
    if detail is None:
        _fail(f"no alert {alert_id}")
    if as_json:
        _print_json(detail)
        return
    _print_alert(detail)


def _named(staff_id: str | None, name: str | None) -> str:
    return f"{staff_id} ({name})" if name and name != staff_id else str(staff_id)


def _print_alert(d: dict[str, Any]) -> None:
    echo = click.echo
    echo(f"alert {d['alert_id']}: {d['title']}")
    echo(f"  person:   {_named(d['staff_id'], d['display_name'])}")
    echo(f"  rule:     {d['rule_id']} (version {d['rule_version']}), severity {d['severity']}")
    state = d["status"] + (" (overdue)" if d["overdue"] else "")
    echo(f"  status:   {state}{', escalated' if d['escalated'] else ''}")
    echo(f"  opened:   {_london(d['opened_at'])}")
    if d["acknowledged_at"]:
        echo(f"  acknowledged: {_london(d['acknowledged_at'])} by {d['acknowledged_by']}")
    if d["resolved_at"]:
        echo(
            f"  resolved: {_london(d['resolved_at'])} by {d['resolved_by']}: "
            f"{d['outcome_label'] or d['outcome']}"
        )
    echo("why it fired:")
    if not d["explanation"]:
        echo("  (the decision log's copy was erased)")
    for condition in d["explanation"]:
        echo(f"  {'held' if condition['result'] else 'not held'}: {condition['words']}")
    echo("sent to:")
    for r in d["sent_to"]:
        echo(f"  {r['name']}: {_named(r['to'], r['display_name'])} by {', '.join(r['channels'])}")
    if d["deliveries"]:
        echo("messages:")
    for m in d["deliveries"]:
        sent = f", sent {_london(m['sent_at'])}" if m["sent_at"] else ""
        echo(f"  {m['kind']} by {m['channel']} to {m['recipient']}: {m['status']}{sent}")
    notes = [(e, e["detail"]["note"]) for e in d["history"] if e["detail"].get("note")]
    echo("notes:")
    if not notes:
        echo("  none")
    for event, note in notes:
        echo(f"  {_london(event['at'])} {event['actor']} ({event['action']}): {note}")
    echo("history:")
    for e in d["history"]:
        detail = {k: v for k, v in e["detail"].items() if k != "note" and v is not None}
        more = "".join(
            f" {k}={', '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in detail.items()
        )
        echo(f"  {_london(e['at'])}  {_named(e['actor'], e['actor_name'])}  {e['action']}{more}")


def _change(obj: Any, action, *args: Any) -> None:
    """Run an alert change; an unknown alert exits 2 (as an unknown staff id does), a change
    the alert's state does not allow exits 1."""
    from engine.alerts import lifecycle as alert_ops

    with obj.current_engine().begin() as conn:
        try:
            action(conn, *args)
        except alert_ops.UnknownAlert as error:
            _fail(str(error), USAGE)
        except alert_ops.AlertError as error:
            _fail(str(error), PROBLEM)


@alerts.command("acknowledge")
@click.argument("alert_id", type=int)
@click.option("--by", "actor", required=True, help="Who acknowledges (staff id or name).")
@click.option("--note", help="Free text.")
@click.pass_obj
def acknowledge(obj: Any, alert_id: int, actor: str, note: str | None) -> None:
    """Mark an open alert as acknowledged (`ack` is the same)."""
    from engine.alerts import lifecycle as alert_ops

    _change(obj, alert_ops.acknowledge, alert_id, actor, datetime.now(UTC), note)
    click.echo(f"alert {alert_id} acknowledged by {actor}")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--by", "actor", required=True, help="Who resolves (staff id or name).")
@click.option("--outcome", type=click.Choice(OUTCOMES), required=True)
@click.option("--note", help="Free text about the conversation (no health details).")
@click.pass_obj
def resolve(obj: Any, alert_id: int, actor: str, outcome: str, note: str | None) -> None:
    """Close an alert with the outcome of the welfare conversation."""
    from engine.alerts import lifecycle as alert_ops

    _change(obj, alert_ops.resolve, alert_id, actor, outcome, datetime.now(UTC), note)
    click.echo(f"alert {alert_id} resolved by {actor}: {outcome}")


alerts.add_command(acknowledge, "ack")

NOW = moment_option("--now", "now", what="Run as if at this time")


@alerts.command("escalate")
@NOW
@json_option
@click.pass_obj
def escalate(obj: Any, now: datetime | None, as_json: bool) -> None:
    """Escalate alerts not acknowledged within routing's escalate.after (a scheduler step)."""
    from engine.alerts import lifecycle as alert_ops

    with obj.current_engine().begin() as conn:
        routing = _active(obj, conn).pack.routing
        done = alert_ops.escalate_overdue(conn, routing, now or datetime.now(UTC))
    _print_json({"escalated": done}) if as_json else click.echo(f"{len(done)} alerts escalated")


@alerts.command("follow-ups")
@NOW
@json_option
@click.pass_obj
def follow_ups(obj: Any, now: datetime | None, as_json: bool) -> None:
    """Queue the follow-up reminders now due (a scheduler step)."""
    from engine.alerts import lifecycle as alert_ops

    with obj.current_engine().begin() as conn:
        routing = _active(obj, conn).pack.routing
        sent = alert_ops.send_follow_ups(conn, routing, now or datetime.now(UTC))
    _print_json({"follow_ups": sent}) if as_json else click.echo(f"{len(sent)} follow-ups queued")


# --- audit -----------------------------------------------------------------------------------


@click.group("audit", cls=Group)
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
    from engine.alerts import audit as audit_ops

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
@json_option
@click.pass_obj
def replay(obj: Any, decision: str, as_json: bool) -> None:
    """Re-run one decision (its id, or its seq) from its stored input and ruleset, and compare
    what it derives with every stored field (exit 1 if anything differs)."""
    from engine.alerts import audit as audit_ops

    with obj.current_engine().connect() as conn:
        try:
            result = audit_ops.replay(conn, decision)
        except audit_ops.AuditError as error:
            _fail(str(error))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        _print_json(
            {
                "decision_id": result.decision_id,
                "rule_id": result.rule_id,
                "same": result.same,
                "differences": result.differences,
                "explanation": result.explanation,
                "notes": result.notes,
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
    from engine.alerts import audit as audit_ops

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
