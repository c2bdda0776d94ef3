"""The command line starts fast because it imports only what the command that runs needs.

Not a timing test (timings on a shared machine say little): each check runs the command in a
fresh interpreter and lists which heavy libraries ended up imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.forcedata import Force, deployment, incident, person, write_rules

# Libraries that cost a large part of a second to import, and that the command line's own
# startup never needs: the polars ingest lane, Arrow, the rules engine, the database layer,
# the web app and its templates, Microsoft sign-in, the scheduler.
HEAVY = (
    "polars",
    "pyarrow",
    "pgpq",
    "duckdb",
    "durable_rules",
    "durable",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "pydantic",
    "flask",
    "jinja2",
    "msal",
    "apscheduler",
    "gunicorn",
)
# What a command that only reads one person's record may import: the database layer and the
# criteria's labels (pydantic), and nothing else from HEAVY (not alembic: a current schema is
# checked without it).
READING = ("sqlalchemy", "sqlmodel", "pydantic")

PROBE = """
import json, sys
from trauma_tracker.cli import main
try:
    main(sys.argv[1:], prog_name="trauma-tracker")
except SystemExit as stop:
    code = stop.code
heavy = {heavy!r}
print(json.dumps({{
    "code": code,
    "loaded": sorted(h for h in heavy if h in sys.modules),
    "tables": sorted(m for m in sys.modules if m.startswith("models.") and m != "models.db"),
}}))
"""


def probe(*args: str) -> dict:
    """Run `trauma-tracker ARGS` in a new interpreter: its exit code (`code`), the HEAVY
    modules it imported (`loaded`) and the models modules of tables it loaded (`tables`)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def imported(*args: str) -> tuple[int, set[str]]:
    """Run `trauma-tracker ARGS` in a new interpreter; its exit code and the HEAVY modules it
    imported."""
    report = probe(*args)
    return report["code"], set(report["loaded"])


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("alerts", "--help"),
        ("rules", "--help"),
        ("outbox", "--help"),
        ("audit", "replay", "--help"),
        ("ingest", "--help"),
        ("serve", "--help"),
    ],
)
def test_help_imports_none_of_the_heavy_libraries(args):
    code, loaded = imported(*args)
    assert code == 0
    assert loaded == set(), f"`trauma-tracker {' '.join(args)}` imported {sorted(loaded)}"


def test_a_bad_option_is_reported_without_importing_the_engine():
    code, loaded = imported("alerts", "--status", "nonsense")
    assert code == 2 and loaded == set()


@pytest.fixture
def small_force(tmp_path):
    url = f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    force = Force(url)
    force.add(
        person("S1"),
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-1", "S1", "first_on_scene", "2025-06-01T10:12:00Z"),
    )
    force.evaluate("2025-07-01T00:00:00Z")
    force.close()
    return url, write_rules(tmp_path / "rules")


def test_reading_a_record_or_the_alerts_imports_neither_polars_nor_the_rules_engine(small_force):
    url, rules = small_force
    for command in (("exposure", "S1"), ("alerts", "--status", "all"), ("audit", "verify")):
        code, loaded = imported("--db", url, "--rules", str(rules), *command)
        assert code in (0, None), command
        assert loaded <= set(READING), f"{command} imported {sorted(loaded - set(READING))}"


def test_reading_a_record_loads_the_people_and_exposure_tables_only(small_force):
    """The tables of each area load when first named (models/__init__.py): a person's record
    needs the feeds' and the scores', not the rules', delivery's or the web's."""
    url, rules = small_force
    report = probe("--db", url, "--rules", str(rules), "exposure", "S1")
    assert report["code"] in (0, None)
    assert report["tables"] == ["models.feeds", "models.scoring"]


def test_the_choices_written_in_the_command_line_are_the_engines():
    """Choices the help shows are written in the cli modules (importing the engine to read
    them would slow every --help): they must stay what the engine accepts."""
    from engine.alerts.lifecycle import OUTCOMES
    from engine.alerts.view import STATUS_FILTERS
    from notifications.outbox import STATUSES
    from trauma_tracker import cli_delivery, cli_rules

    assert cli_rules.OUTCOMES == OUTCOMES
    assert tuple(cli_rules.STATUS.choices) == STATUS_FILTERS
    assert (*STATUSES, "all") == cli_delivery.STATUSES
