"""The `trauma-tracker` command line (CONTRACT section 3).

Exit codes: 0 success; 1 the command ran and found a problem; 2 bad usage or input that
can't be processed at all.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trauma_tracker.cli_options import (
    Group,
    LazyChoice,
    fail,
    json_option,
    moment_option,
)
from trauma_tracker.settings import Settings, SettingsError

if TYPE_CHECKING:  # the engine and the database layer are imported by the commands that run
    import sqlalchemy as sa

    from engine.ingest.batches import BatchReport

REJECTS_SHOWN = 20


def _feed_names() -> list[str]:
    from engine.ingest.feeds import FEEDS

    return sorted(FEEDS)


class Context:
    def __init__(self, settings: Settings, *, as_json: bool = False):
        self.settings = settings
        self.as_json = as_json  # `trauma-tracker --json COMMAND`
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            from models.db import DatabaseError, make_engine

            try:
                self._engine = make_engine(self.settings.database_url)
            except DatabaseError as error:  # a URL that can't be used: one line, exit 2
                fail(str(error))
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def current_engine(self) -> sa.Engine:
        """The engine, after checking the schema is current (else exit 2 with what to do).

        A SQLite file that does not exist is not created here: a command that reads must not
        leave an empty database behind (`init` creates one)."""
        from models.db import DatabaseError, SchemaNotCurrent, require_current

        url = self.engine.url  # not connected yet, so no file is created
        on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        if on_disk and not Path(url.database).exists():
            fail(f"no database at {url.database}: {_where_to_point()}")
        try:
            require_current(self.engine)
        except (SchemaNotCurrent, DatabaseError) as error:
            fail(str(error))
        return self.engine


DEMO_DATABASE = Path("demo-data") / "tracker.sqlite"  # where `make demo` leaves it


def _where_to_point() -> str:
    """What to do about a missing database: create it, or (when there is one here) use the
    demo's. The first always comes first, so a clone where `make demo` ran says it too."""
    if DEMO_DATABASE.exists():
        return (
            "run `trauma-tracker init` to create one; or, for the demo's database, which is "
            "here, put `--db sqlite:///demo-data/tracker.sqlite` before the command, or export "
            "TT_DATABASE_URL=sqlite:///demo-data/tracker.sqlite"
        )
    return (
        "run `trauma-tracker init` to create one, or point --db (or TT_DATABASE_URL) at an "
        "existing one, e.g. the demo's sqlite:///demo-data/tracker.sqlite"
    )


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trauma-tracker", prog_name="trauma-tracker")
@click.option("--db", "database_url", help="Database URL (default: TT_DATABASE_URL or SQLite).")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), help="Rules folder.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (as --json after the command does).",
)
@click.pass_context
def main(
    ctx: click.Context, database_url: str | None, rules_dir: Path | None, as_json: bool
) -> None:
    """Trauma Tracker: counts exposure to traumatic incidents to start welfare conversations.

    After `make demo`, point the commands at the demo's database with
    `--db sqlite:///demo-data/tracker.sqlite` before the command (or TT_DATABASE_URL).
    """
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        fail(str(error))
    overrides = {}
    if database_url:
        overrides["database_url"] = database_url
    if rules_dir:
        overrides["rules_dir"] = rules_dir
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})
    ctx.obj = Context(settings, as_json=as_json)
    ctx.call_on_close(ctx.obj.close)


@main.command()
@click.pass_obj
def init(obj: Context) -> None:
    """Create the database, or upgrade it to the newest schema."""
    from models.db import DatabaseError, migrate

    try:
        before, after = migrate(obj.engine)
    except DatabaseError as error:  # a refused server, a database that does not exist
        fail(str(error))
    where = obj.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"{where}: schema is current ({after})")
    else:
        click.echo(f"{where}: schema {before or 'created'} -> {after}")


class _RateMeter:
    """Rows per second on stderr while a long ingest runs, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started: dict[str, float] = {}

    def __call__(self, name: str, rows: int) -> None:
        if not self.enabled:
            return
        start = self.started.setdefault(name, time.monotonic())
        elapsed = max(time.monotonic() - start, 1e-6)
        click.echo(
            f"\r{Path(name).name}: {rows:,} rows, {rows / elapsed:,.0f} rows/s ",
            err=True,
            nl=False,
        )

    def done(self) -> None:
        if self.enabled and self.started:
            click.echo("", err=True)
            self.started.clear()


def _print_report(report: BatchReport) -> None:
    if report.outcome == "failed":
        click.echo(f"{report.path}: FAILED: {report.message}")
        return
    if report.outcome in ("waiting", "skipped"):  # left for a later run, or to another
        click.echo(f"{report.path}: {report.message}")
        return
    if report.warning:
        click.echo(f"{report.path}: {report.warning}")
    if report.outcome == "duplicate":
        click.echo(f"{report.path} ({report.feed}): already ingested, nothing to do")
        return
    parts = [f"{report.accepted} accepted", f"{report.unchanged} unchanged"]
    for label, count in (
        ("duplicate", report.duplicates),
        ("rejected", report.rejected),
        ("held for unknown people", report.held),
        ("held rows linked", report.linked),
    ):
        if count:
            parts.append(f"{count} {label}")
    click.echo(f"{report.path} ({report.feed}): {', '.join(parts)}")
    for reject in report.rejects[:REJECTS_SHOWN]:
        click.echo(f"  {report.path}:{reject.line}: {reject.reason}")
    if len(report.rejects) > REJECTS_SHOWN:
        click.echo(f"  ... and {len(report.rejects) - REJECTS_SHOWN} more rejected rows")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--feed",
    type=LazyChoice(_feed_names, "FEED"),
    help="Treat every file as this feed (a CONTRACT section 1 name, e.g. cc_incidents).",
)
@click.option("--move", is_flag=True, help="Drop folder: move files to processed/ or failed/.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Files worked on at once: PostgreSQL stores up to N feeds side by side; SQLite "
    "stores one while N-1 other processes prepare the next. Default: the CPUs (SQLite: one "
    "more), at most 4.",
)
@json_option
@click.pass_obj
def ingest(
    obj: Context,
    paths: tuple[Path, ...],
    feed: str | None,
    move: bool,
    jobs: int | None,
    as_json: bool,
):
    """Ingest feed files, or folders of them, one transaction per file.

    Exit 0 when every file taken was stored (rejected rows are reported), 2 when a file
    could not be processed at all, 1 when a file was stored but could not be moved or
    changed while it was read. With --move, files still being written and folders another
    run is at work on are left for later (exit 0; see README, "Drop folders")."""
    from engine.ingest.batches import Ingestor
    from engine.ingest.files import ingest_files
    from integrations.base import FeedFormatError

    meter = _RateMeter()
    ingestor = Ingestor(obj.current_engine(), progress=meter)
    reports = []
    try:
        for report in ingest_files(ingestor, paths, feed=feed, move=move, jobs=jobs):
            meter.done()
            reports.append(report)
            if not as_json:
                _print_report(report)
    except FeedFormatError as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps({"files": [r.to_json() for r in reports]}, indent=2))
    failed = [r for r in reports if r.outcome == "failed"]
    for report in failed:
        click.echo(f"trauma-tracker: {report.path}: {report.message}", err=True)
    warned = [r for r in reports if r.warning]
    for report in warned:
        click.echo(f"trauma-tracker: {report.path}: {report.warning}", err=True)
    if failed or warned:
        sys.exit(2 if failed else 1)


@main.command()
@click.argument("names", nargs=-1)
@json_option
@click.pass_obj
def pull(obj: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Pull the HTTP and SQL sources configured in TT_SOURCES_FILE (all, or those named)."""
    from engine.ingest.batches import Ingestor
    from integrations.base import SourceError
    from trauma_tracker.pulling import pull_sources

    sources = obj.settings.sources
    unknown = set(names) - {s.name for s in sources}
    if unknown:
        fail(f"no configured source named {', '.join(sorted(unknown))} (see TT_SOURCES_FILE)")
    chosen = [s for s in sources if not names or s.name in names]
    if not chosen:
        fail("no sources configured: set TT_SOURCES_FILE to a sources TOML file")
    meter = _RateMeter()
    ingestor = Ingestor(obj.current_engine(), progress=meter)
    reports: list[BatchReport] = []
    try:
        for report in pull_sources(ingestor, chosen):
            meter.done()
            reports.append(report)
            if not as_json:
                _print_report(report)
    except SourceError as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps({"files": [r.to_json() for r in reports]}, indent=2))
    if any(r.outcome == "failed" for r in reports):
        sys.exit(2)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--people", default=600, show_default=True, type=click.IntRange(min=10))
@click.option("--years", default=2.0, show_default=True, type=click.FloatRange(min=0.1, max=30))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--dirty", is_flag=True, help="Add realistic faults for tests and demos.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: today).")
@click.option("--format", "fmt", type=click.Choice(["csv", "ndjson"]), default="csv")
def generate(directory: Path, people: int, years: float, seed: int, dirty, end, fmt) -> None:
    """Write a synthetic force's feeds (deterministic for a seed and end date)."""
    from trauma_tracker.synthetic import generate_force

    summary = generate_force(
        directory,
        people=people,
        years=years,
        seed=seed,
        dirty=dirty,
        end=end.date() if end else None,
        fmt=fmt,
    )
    counts = summary.get("counts", {})
    total = sum(counts.values()) if isinstance(counts, dict) else 0
    click.echo(f"{directory}: {total:,} rows for {people} people over {years:g} years")
    for feed_name, count in counts.items():
        click.echo(f"  {feed_name}: {count:,}")


# -- scoring, indicators, opt-out -------------------------------------------------------------


def _load_criteria(obj: Context):
    """The criteria file, or exit 1 listing every problem as FILE:LINE: message."""
    from engine.scoring.criteria import load_criteria
    from engine.yamlfile import RuleFileError

    try:
        return load_criteria(obj.settings.rules_dir)
    except RuleFileError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


AS_OF = moment_option("--as-of", "as_of", what="The moment to compute for")


@main.command()
@AS_OF
@click.option("--full", is_flag=True, help="Rescore every exposure and snapshot everyone.")
@json_option
@click.pass_obj
def evaluate(obj: Context, as_of: datetime | None, full: bool, as_json: bool) -> None:
    """Score exposures, take each person's indicator snapshot, and run the intervention rules.

    Incremental: only what ingest changed since the last evaluation is rescored, and a
    snapshot is written for each person whose figures changed. The rules (--rules or
    TT_RULES_DIR) then run on everyone's figures and on new exposures, opening alerts and
    queueing their notifications in the same transaction. Broken rule files are reported and
    the last good ruleset runs instead; with none ever stored, nothing is done (exit 2). An
    earlier moment than the newest evaluation (--as-of in the past) runs no rules.
    """
    from engine.alerts.lifecycle import NoRecipient
    from engine.evaluation import NoValidRuleset, run_evaluation

    criteria, text = _load_criteria(obj)
    try:
        report = run_evaluation(
            obj.current_engine(),
            criteria,
            text,
            as_of=as_of,
            full=full,
            history_days=obj.settings.history_days,
            rules_dir=obj.settings.rules_dir,
        )
    except NoValidRuleset as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        fail(
            f"no valid ruleset in {obj.settings.rules_dir} and none stored from an earlier run: "
            "fix the rule files above (`trauma-tracker rules validate`); nothing was evaluated"
        )
    except NoRecipient as error:
        fail(f"{error}; nothing was evaluated (the run was rolled back)", 1)
    for problem in report.rule_problems:
        click.echo(f"warning: {problem}", err=True)
    if report.ruleset_fallback:
        click.echo(
            f"warning: rule files not used; still running ruleset {report.ruleset}", err=True
        )
    for disagreement in report.rule_disagreements:
        click.echo(f"warning: rules engine and explanation disagree: {disagreement}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    when = _london(report.as_of)
    click.echo(
        f"evaluated as of {when} ({report.mode}, criteria {report.criteria_version}): "
        f"{report.people} people, {report.snapshots_written} snapshots written, "
        f"{report.groups_rescored} person-incident pairs rescored, {report.exposures} exposures"
    )
    if not report.current:
        click.echo("  an earlier moment than the newest evaluation: current snapshots unchanged")
    if report.rules_run:
        fallback = " (last good version: the rule files have problems)"
        click.echo(
            f"  rules {report.ruleset}{fallback if report.ruleset_fallback else ''}: "
            f"{_count(report.decisions, 'decision')}, "
            f"{_count(report.alerts_opened, 'alert')} opened "
            f"({_count(report.people_evaluated, 'person', 'people')} and "
            f"{_count(report.exposures_evaluated, 'new exposure')} evaluated)"
        )
    else:
        click.echo(f"  rules not run ({report.rules_skipped}): 0 decisions, 0 alerts")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _london(moment: datetime) -> str:
    from engine.sqltime import LONDON

    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M %Z")


@main.command()
@click.argument("staff_id")
@AS_OF
@json_option
@click.pass_obj
def exposure(obj: Context, staff_id: str, as_of: datetime | None, as_json: bool) -> None:
    """One person's exposure: points and counts over 30 days, 90 days, 365 days and 5 years,
    and every exposure in the history. A window longer than the records held is marked
    partial, with the date they begin. An opted-out person shows only that."""
    from engine.people.own_record import (
        UnknownPerson,
        person_exposure,
        records_begin,
        window_coverage,
    )
    from engine.scoring.criteria import load_criteria
    from engine.yamlfile import RuleFileError

    try:  # labels only: a broken criteria file must not hide a person's record
        criteria, _ = load_criteria(obj.settings.rules_dir)
    except RuleFileError:
        criteria = None
    engine = obj.current_engine()
    history_days = obj.settings.history_days
    try:
        document = person_exposure(
            engine,
            staff_id,
            as_of or datetime.now(UTC),
            history_days=history_days,
            criteria=criteria,
        )
    except UnknownPerson:
        fail(f"no person with staff id {staff_id!r} has been ingested")
    with engine.connect() as conn:
        document = window_coverage(document, records_begin(conn), history_days)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        _print_exposure(document)


def _print_exposure(document: dict) -> None:
    staff_id = document["staff_id"]
    if document["opted_out"]:
        click.echo(f"{staff_id} has opted out: nothing about them is recorded or shown.")
        return
    as_of = datetime.fromisoformat(document["as_of"].replace("Z", "+00:00"))
    click.echo(f"{staff_id} as of {_london(as_of)}")
    click.echo(f"  {'window':<8} {'points':>8} {'exposures':>10}")
    begins = document["history_from"]
    since = _london(datetime.fromisoformat(begins.replace("Z", "+00:00")))[:10] if begins else None
    for window, figures in document["windows"].items():
        partial = ""
        if not figures["complete"]:
            partial = f"  partial: the records begin {since}" if since else "  partial: no records"
        click.echo(f"  {window:<8} {figures['points']:>8g} {figures['exposures']:>10}{partial}")
    if not document["exposures"]:
        click.echo("  no exposures recorded")
        return
    click.echo("")
    # The category comes last, whole: labels such as "Child sexual abuse, including category
    # A/B images" are too long for a column and mean something else cut short.
    refs = max(len(str(item["ref"])) for item in document["exposures"])
    header = f"  {'when':<20} {'tier':>4}  {'role':<15} {'points':>6}  {'ref':<{refs}}  category"
    click.echo(header)
    for item in document["exposures"]:
        when = _london(datetime.fromisoformat(item["at"].replace("Z", "+00:00")))
        category = item["label"] or item["category"]
        click.echo(
            f"  {when:<20} {item['tier']:>4}  {item['role']:<15} {item['points']:>6g}  "
            f"{item['ref']:<{refs}}  {category}"
        )


def _actor(given: str | None) -> str:
    import getpass

    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return "unknown"


_BY_HELP = "Who is recording the person's choice (default: the operating-system user)."


@main.command("opt-out")
@click.argument("staff_id")
@click.option("--by", "actor", help=_BY_HELP)
@click.pass_obj
def opt_out_command(obj: Context, staff_id: str, actor: str | None) -> None:
    """Record that a person opts out: their exposures, snapshots and alerts (with the alerts'
    queued notifications) are deleted at once, and none are made while they are out."""
    from engine.people.opt_out import UnknownPerson, opt_out

    try:
        done = opt_out(obj.current_engine(), staff_id, actor=_actor(actor))
    except UnknownPerson:
        fail(f"no person with staff id {staff_id!r} has been ingested")
    if done:
        click.echo(f"{staff_id} opted out: their derived data is deleted and none will be made.")
    else:
        click.echo(f"{staff_id} had already opted out; nothing changed.")


@main.command("opt-in")
@click.argument("staff_id")
@click.option("--by", "actor", help=_BY_HELP)
@click.pass_obj
def opt_in_command(obj: Context, staff_id: str, actor: str | None) -> None:
    """Record that a person opts back in: their exposures and snapshot are rebuilt from the
    source records straight away."""
    from engine.people.opt_out import UnknownPerson, opt_in

    criteria, _ = _load_criteria(obj)
    try:
        done = opt_in(obj.current_engine(), staff_id, criteria, actor=_actor(actor))
    except UnknownPerson:
        fail(f"no person with staff id {staff_id!r} has been ingested")
    if done:
        click.echo(f"{staff_id} opted back in: exposures rebuilt from the source records.")
    else:
        click.echo(f"{staff_id} had not opted out; nothing changed.")


# The other commands live in their own modules; like this one, they import the engine only
# inside the command that runs (tests/cli/test_startup.py).
from trauma_tracker import cli_delivery, cli_rules, cli_service, cli_web  # noqa: E402

for _command in cli_rules.COMMANDS:  # rules, alerts, audit
    main.add_command(_command)
cli_delivery.register(main)  # notify, outbox
cli_service.register(main)  # run, scheduler, demo
cli_web.register(main)  # serve


if __name__ == "__main__":  # pragma: no cover
    main()
