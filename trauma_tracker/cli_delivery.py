"""The `notify` and `outbox` commands (CONTRACT section 3), registered on `main` in cli.py.

`notify` sends what is due once; a channel that is not configured is named with the setting
it lacks, and its messages stay pending. `outbox` lists messages with their channel health;
`outbox retry ID` puts a failed one back.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
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

# The outbox and the dispatcher (and with them the database layer) are imported inside each
# command, so that `trauma-tracker --help` does not wait for them.


def _london(text: str | None) -> str:
    from engine.sqltime import LONDON

    if not text:
        return "-"
    return datetime.fromisoformat(text).astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


# notifications.outbox.STATUSES and "all", written here so that `--help` shows them without
# importing the database layer (tests/cli/test_startup.py checks that the two agree).
STATUSES = ("pending", "claimed", "sent", "failed", "cancelled", "all")


def _print_health(health: dict[str, dict[str, Any]]) -> None:
    for channel, state in health.items():
        if state["healthy"]:
            click.echo(f"{channel}: healthy (last sent {_london(state['last_success_at'])})")
        else:
            click.echo(
                f"{channel}: UNHEALTHY since {_london(state['since'])}: {state['last_error']}"
            )


@click.command("notify")
@moment_option("--now", "now", what="Run as if at this time")
@json_option
@click.pass_obj
def notify(obj: Any, now: datetime | None, as_json: bool) -> None:
    """Send what is due in the outbox once (email, Teams), then report.

    Messages inside quiet hours, or for a recipient whose digest window is still open, are
    deferred; a channel that is not configured is named with the missing setting and its
    messages stay pending. Exit 1 when a message failed for good in this run.
    """
    from engine.rules.active import NoValidRuleset
    from trauma_tracker.delivery import dispatch_now

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


@click.group("outbox", cls=Group, invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@json_option
@click.pass_context
def outbox(ctx: click.Context, status: str, as_json: bool) -> None:
    """List outbox messages (channel, recipient, attempts, last error) and channel health."""
    from notifications import outbox as outbox_ops

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
    import sqlalchemy as sa

    from models import OutboxMessage, table_of
    from notifications import outbox as outbox_ops

    with obj.current_engine().begin() as conn:
        messages = table_of(OutboxMessage)
        found = conn.execute(sa.select(messages.c.id).where(messages.c.id == message_id)).first()
        if found is None:  # an unknown id is bad input, as an unknown alert or staff id is
            _fail(f"no outbox message {message_id}", USAGE)
        try:
            outbox_ops.retry(conn, message_id, datetime.now(UTC))
        except outbox_ops.OutboxError as error:
            _fail(str(error), PROBLEM)
    click.echo(f"outbox message {message_id} is pending again; `notify` sends it")


COMMANDS = (notify, outbox)


def register(group: click.Group) -> None:
    """Add `notify` and `outbox` to the main command group (cli.py's one line)."""
    for command in COMMANDS:
        group.add_command(command)
