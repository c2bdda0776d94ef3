"""What every command of the command line shares: failing with an exit code, the one parser
for a time given on the command line, `--json` (accepted before the command or after it),
and choices read from the engine only when a command runs.

This module imports nothing heavier than click, so that `trauma-tracker --help` starts fast:
the engine, the database layer, polars and the rules engine are imported inside the command
that needs them (tests/cli/test_startup.py checks it).

Exit codes (CONTRACT section 3): 0 success; 1 the command ran and found a problem (invalid
rules, failing rule tests, a broken audit chain, a replay that differs, a change the alert's
state does not allow); 2 bad usage or input that can't be processed at all (an unknown
option, a bad time, an alert, person, decision or message id that does not exist).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NoReturn

import click

PROBLEM = 1  # the command ran and found a problem
USAGE = 2  # bad usage, or input that can't be processed at all

TIME_HELP = (
    "ISO 8601; without an offset it is London time; a bare date (YYYY-MM-DD) means the end "
    "of that day"
)


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print `trauma-tracker: message` on stderr and exit with `code`."""
    click.echo(f"trauma-tracker: {message}", err=True)
    sys.exit(code)


def parse_moment(text: str) -> datetime:
    """A moment given on the command line (`--as-of`, `--now`), as aware UTC.

    The one meaning for every command: ISO 8601 with an offset or `Z` as given, without one
    London time, and a bare date the end of that day in London (23:59:59.999999), so that
    "as of 30 June" counts all of 30 June. Like every date in the feeds, it must lie between
    engine.ingest.feeds.EARLIEST and LATEST (a 0001-01-01 or 9999-12-31 is a typo or a placeholder).

    :raise click.BadParameter: not a date or time, or outside that range.
    """
    from engine.ingest.feeds import EARLIEST, LATEST
    from engine.sqltime import LONDON, parse_as_of

    try:
        moment = parse_as_of(text)
        day = moment.astimezone(LONDON).date()
    except (ValueError, OverflowError):
        day = None
    if day is None or not EARLIEST <= day <= LATEST:
        raise click.BadParameter(
            f"{text!r}: expected a date (YYYY-MM-DD) or an ISO 8601 time, e.g. 2025-06-30T09:00, "
            f"from {EARLIEST} to {LATEST}"
        )
    return moment


def moment_option(*names: str, what: str) -> Callable:
    """An option holding a moment (None when not given), parsed by `parse_moment`."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None):
        return None if value is None else parse_moment(value)

    return click.option(
        *names, metavar="T", callback=callback, help=f"{what} ({TIME_HELP}). Default: now."
    )


def _json_wanted(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    return value or bool(ctx.find_root().params.get("as_json"))


def json_option(command: Callable) -> Callable:
    """`--json` on a command that prints a JSON document; `trauma-tracker --json COMMAND`
    (the flag before the command) means the same."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_json_wanted,
        help="Print one JSON document (also accepted before the command).",
    )(command)


class Group(click.Group):
    """A command group that refuses `trauma-tracker --json COMMAND` for a command that prints
    no JSON document, rather than printing text to a caller who asked for JSON."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        wants_json = ctx.find_root().params.get("as_json")
        if (
            wants_json
            and command is not None
            and not isinstance(command, click.Group)
            and not any(p.name == "as_json" for p in command.params)
        ):
            path = " ".join([*ctx.command_path.split()[1:], name or ""]).strip()
            raise click.UsageError(f"`{path}` prints no JSON document: leave out --json", ctx)
        return name, command, rest


class LazyChoice(click.Choice):
    """A choice whose values are read from the engine when a command parses its options, not
    when the command line is built or its help shown (so `--help` does not import the
    engine): the help shows `metavar`, and a wrong value is answered with the choices."""

    def __init__(self, load: Callable[[], Iterable[str]], metavar: str):
        self._load = load
        self._metavar = metavar
        super().__init__((), case_sensitive=True)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return self._metavar

    @property
    def choices(self) -> tuple[Any, ...]:  # type: ignore[override]
        return tuple(self._load())

    @choices.setter
    def choices(self, _value: Any) -> None:  # click.Choice.__init__ sets it
        pass
