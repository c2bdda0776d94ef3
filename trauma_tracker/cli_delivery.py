"""The `notify` and `outbox` commands (CONTRACT section 3), registered on `main` in cli.py.

`notify` sends what is due once; a channel that is not configured is named with the setting
it lacks, and its messages stay pending. `outbox` lists messages with their channel health;
`outbox retry ID` puts a failed one back.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click

from engine.rules.active import NoValidRuleset
from notifications import outbox as outbox_ops

LONDON = ZoneInfo("Europe/London")


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"trauma-tracker: {message}", err=True)
    sys.exit(code)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--now {text!r} is not a time (use ISO 8601, e.g. 2026-03-29T07:00Z)")
    return (moment if moment.tzinfo else moment.replace(tzinfo=LONDON)).astimezone(UTC)


def _london(text: str | None) -> str:
    if not text:
        return "-"
    return datetime.fromisoformat(text).astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


def _print_health(health: dict[str, dict[str, Any]]) -> None:
    for channel, state in health.items():
        if state["healthy"]:
            click.echo(f"{channel}: healthy (last sent {_london(state['last_success_at'])})")
        else:
            click.echo(
                f"{channel}: UNHEALTHY since {_london(state['since'])}: {state['last_error']}"
            )


@click.command("notify")
@click.option("--now", "now_text", help="Run as if at this time (ISO 8601); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def notify(obj: Any, now_text: str | None, as_json: bool) -> None:
    """Send what is due in the outbox once (email, Teams), then report.

    Messages inside quiet hours, or for a recipient whose digest window is still open, are
    deferred; a channel that is not configured is named with the missing setting and its
    messages stay pending. Exit 1 when a message failed for good in this run.
    """
    from trauma_tracker.delivery import dispatch_now

    now = _moment(now_text)
    try:
        report = dispatch_now(obj.settings, obj.current_engine(), now=now)
    except NoValidRuleset as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        _fail("no valid routing: fix the rule files (see above); nothing was sent")
    except ValueError as error:  # a delivery setting that can't be used (e.g. a bad URL)
        _fail(str(error))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(
            f"{report.sent} sent, {report.failed} failed, {report.deferred} deferred"
            + (f" ({report.retrying} to retry)" if report.retrying else "")
            + (f", {report.cancelled} cancelled" if report.cancelled else "")
        )
        for channel, why in report.unconfigured.items():
            waiting = report.waiting.get(channel, 0)
            click.echo(f"{channel}: not configured: {why}; {waiting} message(s) stay pending")
        _print_health(report.health)
    if report.failed:
        sys.exit(1)


STATUS = click.Choice([*outbox_ops.STATUSES, "all"])


@click.group("outbox", invoke_without_command=True)
@click.option("--status", type=STATUS, default="pending", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def outbox(ctx: click.Context, status: str, as_json: bool) -> None:
    """List outbox messages (channel, recipient, attempts, last error) and channel health."""
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.current_engine().connect() as conn:
        messages = outbox_ops.list_messages(conn, status)
        health = outbox_ops.health(conn)
    for m in messages:  # each row says how its channel is doing
        state = health.get(m["channel"])
        m["channel_healthy"] = state["healthy"] if state else None
        m["channel_error"] = state["last_error"] if state else None
    if as_json:
        click.echo(json.dumps(messages, indent=2))
        return
    for m in messages:
        line = (
            f"{m['id']:>6}  {_london(m['due_at'])}  {m['status']:<9} {m['channel']:<5} "
            f"{m['kind']:<12} alert {m['alert_id'] or '-':<6} {m['recipient']}  "
            f"attempts {m['attempts']}"
        )
        click.echo(line + (f"  last error: {m['last_error']}" if m["last_error"] else ""))
    if not messages:
        click.echo(f"no {status if status != 'all' else ''} messages".replace("  ", " "))
    _print_health(health)


@outbox.command("retry")
@click.argument("message_id", type=int)
@click.pass_obj
def retry(obj: Any, message_id: int) -> None:
    """Put a failed message back to pending, due now."""
    with obj.current_engine().begin() as conn:
        try:
            outbox_ops.retry(conn, message_id, datetime.now(UTC))
        except outbox_ops.OutboxError as error:
            _fail(str(error), 1)
    click.echo(f"outbox message {message_id} is pending again; `notify` sends it")


COMMANDS = (notify, outbox)


def register(group: click.Group) -> None:
    """Add `notify` and `outbox` to the main command group (cli.py's one line)."""
    for command in COMMANDS:
        group.add_command(command)
