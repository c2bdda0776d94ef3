"""Fixtures for the web app: a small force with named people, the app, and signing in as them.

`web_force` is stored through the real ingest path (tests/forcedata.py) on each database and
evaluated with the shipped intervention rules at the real current time (once a session, then
copied for each test), so the pages' "last 7 days" and "today" mean what they say. Personas
read like sentences in tests: `sign_in_as(client, "supervisor")`.

The force (staff ids):
- P100 officer, supervised by P200: three serious exposures in 30 days (a cluster alert to
  P200), older ones back over four years, cancelled rest days and a sickness spell.
- P101 on the same team: a tier-3 exposure two days ago (a TRiM alert to P200 and wellbeing).
- P102 on the same team, opted out: only counted on the team page.
- P200 supervisor of P100, P101, P102, and (since yesterday) P401.
- P300 other supervisor, of P301 on another team.
- P400 previous supervisor: P401 moved from P400's team to P200's yesterday.
- P500 wellbeing, P600 auditor, P700 leader, P800 admin (roles come with the sign-in).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.people.opt_out import opt_out
from engine.sqltime import local_date
from tests.forcedata import (
    Force,
    absence,
    deployment,
    incident,
    person,
    rest_day,
    write_rules,
)
from tests.pgsnapshot import Snapshot, schema_url
from trauma_tracker.settings import Settings, WebSettings

# persona -> (staff id, roles held at sign-in); "anonymous" signs in as nobody.
PERSONAS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "officer": ("P100", ()),
    "supervisor": ("P200", ()),
    "other_supervisor": ("P300", ()),
    "previous_supervisor": ("P400", ()),
    "wellbeing": ("P500", ("wellbeing",)),
    "auditor": ("P600", ("auditor",)),
    "leader": ("P700", ("leader",)),
    "admin": ("P800", ("admin",)),
    "anonymous": (None, ()),
}
SUPPORT_CONTACTS = (("Force welfare line", "https://welfare.force.example/"),)
SECRET_KEY = "web-tests-secret-key-not-for-use-anywhere-else"


@dataclass
class WebForce:
    """The stored force and what the tests need to find in it."""

    force: Force
    url: str
    rules_dir: Path
    now: datetime
    personas: dict[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)
    # The alerts the tests act on: P100's cluster alert (to P200), P101's TRiM alert (to P200
    # and wellbeing); every open alert by (staff id, rule id).
    alerts: dict[str, int] = field(default_factory=dict)
    rule_alerts: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def engine(self) -> sa.Engine:
        return self.force.engine

    def staff_id(self, persona: str) -> str | None:
        return self.personas[persona][0]

    def settings(self, **web) -> Settings:
        return Settings(
            database_url=self.url,
            rules_dir=self.rules_dir,
            secret_key=SECRET_KEY,
            web=WebSettings(
                dev_login=web.pop("dev_login", True), support_contacts=SUPPORT_CONTACTS, **web
            ),
        )


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_web_force(url: str, rules_dir: Path, now: datetime | None = None) -> WebForce:
    """Ingest and evaluate the force described in this module's docstring at `now`."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    today = local_date(now)
    yesterday = (today - timedelta(days=1)).isoformat()
    force = Force(url)

    def ago(days: float) -> str:
        return _z(now - timedelta(days=days))

    def exposure(
        urn: str, staff_id: str, days: float, code: str, qualifiers: str = "", role="attending"
    ):
        return incident(urn, ago(days), code, qualifiers), deployment(
            urn, staff_id, role, ago(days)
        )

    units = [
        ("units", {"unit_id": "F", "parent_id": None, "level": "force", "name": "Force"}),
        ("units", {"unit_id": "T1", "parent_id": "F", "level": "team", "name": "Response 1"}),
        ("units", {"unit_id": "T2", "parent_id": "F", "level": "team", "name": "Response 2"}),
        ("units", {"unit_id": "T3", "parent_id": "F", "level": "team", "name": "CID"}),
    ]
    force.add(
        *units,
        person(
            "P100", display_name="Alex Officer", supervisor_id="P200", service_start="2019-03-01"
        ),
        person("P101", display_name="Bea Constable", supervisor_id="P200"),
        person("P102", display_name="Cal Optedout", supervisor_id="P200"),
        person("P200", display_name="Sam Sergeant", rank_or_grade="Sergeant", supervisor_id="P210"),
        person("P210", display_name="Ira Inspector", rank_or_grade="Inspector"),
        person("P300", display_name="Robin Other", rank_or_grade="Sergeant", unit_id="T2"),
        person("P301", display_name="Jo Elsewhere", unit_id="T2", supervisor_id="P300"),
        person("P400", display_name="Chris Previous", rank_or_grade="Sergeant", unit_id="T3"),
        person("P401", display_name="Dana Mover", unit_id="T3", supervisor_id="P400"),
        person("P401", display_name="Dana Mover", supervisor_id="P200", valid_from=yesterday),
        person("P500", display_name="Wren Wellbeing", staff_type="staff", role_group="wellbeing"),
        person("P600", display_name="Ari Auditor", staff_type="staff", role_group="audit"),
        person("P700", display_name="Lee Leader", rank_or_grade="Superintendent"),
        person("P800", display_name="Ash Admin", staff_type="staff", role_group="it"),
    )
    force.add(
        *exposure("INC-1", "P100", 2, "SUICIDE"),
        *exposure("INC-2", "P100", 10, "SUICIDE"),
        *exposure("INC-3", "P100", 20, "SUICIDE", role="first_on_scene"),
        *exposure("INC-4", "P100", 45, "SUDDEN_DEATH"),
        *exposure("INC-5", "P100", 130, "SUDDEN_DEATH"),
        *exposure("INC-6", "P100", 300, "SUDDEN_DEATH", "CHILD"),
        *exposure("INC-7", "P100", 700, "SUDDEN_DEATH"),
        *exposure("INC-8", "P100", 1500, "SUICIDE"),
        *exposure("INC-9", "P101", 2, "SUDDEN_DEATH", "CHILD", role="first_on_scene"),
        *exposure("INC-10", "P102", 3, "SUICIDE"),
        *exposure("INC-11", "P401", 5, "SUICIDE"),
        *exposure("INC-12", "P301", 4, "SUICIDE"),
        rest_day("P100", (today - timedelta(days=6)).isoformat(), ago(20)[:10]),
        rest_day("P100", (today - timedelta(days=30)).isoformat(), ago(33)[:10]),
        absence(
            "P100",
            (today - timedelta(days=60)).isoformat(),
            (today - timedelta(days=57)).isoformat(),
        ),
    )
    force.evaluate(now, rules_dir=rules_dir)
    opt_out(force.engine, "P102", actor="P102", channel="web", clock=lambda: now)
    with force.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, staff_id, rule_id FROM alerts WHERE status = 'open' ORDER BY id")
        ).all()
    by_rule = {(row.staff_id, row.rule_id): row.id for row in rows}
    return WebForce(
        force=force,
        url=url,
        rules_dir=rules_dir,
        now=now,
        personas=dict(PERSONAS),
        alerts={"P100": by_rule[("P100", "cluster-30d")], "P101": by_rule[("P101", "trim-check")]},
        rule_alerts=by_rule,
    )


@pytest.fixture
def web_rules(tmp_path) -> Path:
    """The test criteria beside the shipped intervention rules and routing."""
    return write_rules(tmp_path / "rules")


class WebForceTemplates:
    """The named force, built once a session on each database and handed to each test as a
    copy (SQLite: the file; PostgreSQL: the rows restored from a snapshot, in one schema kept
    for the session). Building it is ingest, scoring and the rules: seconds a test, where
    this is milliseconds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[str, WebForce] = {}
        self.postgres: dict[str, Any] = {}

    def sqlite(self, url: str, rules_dir: Path) -> WebForce:
        template = self.folder / "web-force.sqlite"
        if "sqlite" not in self.built:
            built = build_web_force(
                f"sqlite:///{template}", write_rules(self.folder / "sqlite-rules")
            )
            with built.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the one file
            built.force.close()
            self.built["sqlite"] = built
        shutil.copyfile(template, url.removeprefix("sqlite:///"))
        return replace(self.built["sqlite"], force=Force(url), url=url, rules_dir=rules_dir)

    def postgresql(self, postgres_url: str, rules_dir: Path) -> WebForce:
        if "postgresql" not in self.built:
            self._build_postgresql(postgres_url)
        else:
            self._restore_postgresql()
        url = self.postgres["url"]
        return replace(self.built["postgresql"], force=Force(url), url=url, rules_dir=rules_dir)

    def _build_postgresql(self, postgres_url: str) -> None:
        schema = f"tt_web_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(postgres_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = schema_url(postgres_url, schema)
        built = build_web_force(url, write_rules(self.folder / "postgresql-rules"))
        built.force.close()
        self.built["postgresql"] = built
        self.postgres = {"admin": admin, "schema": schema, "url": url}
        self.postgres["snapshot"] = Snapshot(admin, schema)

    def _restore_postgresql(self) -> None:
        assert self.postgres["snapshot"].restore(self.postgres["schema"]), (
            "a web test changed the web force's schema itself"
        )

    def close(self) -> None:
        if self.postgres:
            self.postgres["snapshot"].drop()
            with self.postgres["admin"].begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.postgres["schema"]}" CASCADE'))
            self.postgres["admin"].dispose()


@pytest.fixture(scope="session")
def web_force_templates(tmp_path_factory):
    templates = WebForceTemplates(tmp_path_factory.mktemp("web-force"))
    yield templates
    templates.close()


@pytest.fixture
def web_force(request, database_url, web_rules, web_force_templates):
    """The named force (module docstring) on each database, evaluated at the session's start,
    as a fresh copy for each test."""
    if database_url.startswith("sqlite"):
        built = web_force_templates.sqlite(database_url, web_rules)
    else:
        built = web_force_templates.postgresql(request.getfixturevalue("postgres_url"), web_rules)
    yield built
    built.force.close()


@pytest.fixture
def app(web_force):
    """The app on `web_force`'s database, with the persona picker on (TT_DEV_LOGIN)."""
    from web import create_app

    app = create_app(web_force.settings(), testing=True)
    yield app
    app.extensions["tt"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_FIELD = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_FIELD.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1) or found.group(2)


def sign_in(client, staff_id: str, roles: tuple[str, ...] | list[str] = ()):
    """Sign in through the persona picker, as a person would (the form and its CSRF token)."""
    page = client.get("/dev/login")
    assert page.status_code == 200, page.status_code
    response = client.post(
        "/dev/login",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "other_staff_id": staff_id,
            "roles": list(roles),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response


@pytest.fixture
def sign_in_as():
    """`sign_in_as(client, persona)`: signs the client in as a named persona (or, for
    "anonymous", leaves it signed out); returns the persona's staff id."""

    def do(client, persona: str) -> str | None:
        staff_id, roles = PERSONAS[persona]
        if staff_id is None:
            client.delete_cookie("tt_session")
            return None
        sign_in(client, staff_id, roles)
        return staff_id

    return do


def bearer_for(client, persona: str) -> dict[str, str]:
    """Headers for an API call as `persona` with a /dev/token bearer token."""
    staff_id, roles = PERSONAS[persona]
    if staff_id is None:
        return {}
    response = client.post("/dev/token", json={"staff_id": staff_id, "roles": list(roles)})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


# --- the browser -------------------------------------------------------------------------------
# One chromium for the whole session, shared by every browser test module: Playwright's sync
# API can't run twice at once in one thread, so a second module's own browser would fail.

CHROMIUM = Path(os.environ.get("TT_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _must_run() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("TT_TEST_POSTGRES") == "require"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"chromium not found at {CHROMIUM}: apt-get install chromium (or set TT_CHROMIUM)"
        if _must_run():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()
