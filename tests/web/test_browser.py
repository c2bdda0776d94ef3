"""Journeys in a real browser (Debian's chromium through Playwright), with axe-core on every
page and a screenshot of each saved outside git (TT_SCREENSHOTS, default /tmp/tt-screens).

Each test gets a fresh force (SQLite) served by werkzeug on 127.0.0.1 in a thread, with the
same settings a demo has: dev login on loopback, CSP and security headers on. One browser runs
for the whole session. Without chromium the tests skip, except in CI (CI=true) or with
TT_TEST_POSTGRES=require, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from tests.forcedata import write_rules
from tests.web.conftest import build_web_force

SCREENS = Path(os.environ.get("TT_SCREENSHOTS", "/tmp/tt-screens"))

pytestmark = pytest.mark.slow


class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live(tmp_path):
    """A fresh force, and the app serving it on loopback as the demo would."""
    from web import create_app

    force = build_web_force(f"sqlite:///{tmp_path / 'web.sqlite'}", write_rules(tmp_path / "rules"))
    app = create_app(force.settings(), loopback=True)
    server = LiveServer(app)
    server.force = force
    yield server
    server.stop()
    app.extensions["tt"].dispose()
    force.force.close()


class Visit:
    """One person's browser window: every page it lands on is checked with axe-core, must not
    break the Content-Security-Policy, and is photographed."""

    def __init__(self, browser, axe, live, who: str, width: int = 1100):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        # A busy machine (CI beside other work) answers slowly; waiting longer is not a check.
        self.context.set_default_timeout(60_000)
        self.context.set_default_navigation_timeout(60_000)
        self.page = self.context.new_page()
        self.axe = axe
        self.live = live
        self.who = who
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def go(self, path: str):
        response = self.page.goto(self.live.url + path)
        return response

    def check(self, name: str) -> None:
        """axe-core on the page as it is now: zero violations; then a screenshot."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(SCREENS / f"{self.who}-{name}.png"), full_page=True)
        results = self.axe.run(self.page)
        assert results.violations_count == 0, f"{name}: {results.generate_report()}"
        assert not self.problems, f"{name}: {self.problems}"
        assert self.page.title().endswith("Trauma Tracker"), self.page.title()

    def sign_in(self, staff_id: str, roles: tuple[str, ...] = ()):
        """Through the persona picker, choosing the person by their radio button."""
        self.go("/me")
        assert "/sign-in-required" in self.page.url
        self.check("sign-in")
        self.page.get_by_role("link", name="Choose a person to sign in as").click()
        self.check("persona-picker")
        self.page.locator(f"input[name=staff_id][value={staff_id}]").check()
        for role in roles:
            self.page.locator(f"input[name=roles][value={role}]").check()
        self.page.get_by_role("button", name="Sign in").click()

    def heading(self) -> str:
        return self.page.locator("h1").first.inner_text()

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, axe, live):
    opened: list[Visit] = []

    def open_as(who: str, width: int = 1100) -> Visit:
        window = Visit(browser, axe, live, who, width)
        opened.append(window)
        return window

    yield open_as
    for window in opened:
        window.close()


def test_an_officer_reads_their_record_sees_who_looked_and_opts_out_and_back_in(visit):
    # Their supervisor looks at their record first, giving a reason.
    sergeant = visit("supervisor-for-officer")
    sergeant.sign_in("P200")
    sergeant.go("/people/P100")
    sergeant.page.get_by_label("A welfare conversation with them").check()
    sergeant.page.get_by_role("button", name="Open the record").click()
    assert sergeant.heading() == "Alex Officer's record"

    officer = visit("officer")
    officer.sign_in("P100")
    assert officer.heading() == "Your record"
    officer.check("me")
    page = officer.page
    assert page.get_by_text("never used for discipline, performance or promotion").count() >= 1
    figures = page.locator(".tt-figure")
    assert figures.count() == 3
    assert "from 3 exposures" in figures.nth(0).inner_text()  # three suicides in 30 days
    assert page.locator("svg.tt-chart__svg rect").count() >= 4
    page.get_by_text("The chart's figures as a table").click()  # a details element
    table = page.get_by_role("table", name=re.compile("Exposures by month"))
    assert table.locator("tbody tr").count() == 12
    officer.check("me-chart-table-open")
    assert page.get_by_role("link", name="Police Care UK").count() == 1
    assert page.get_by_role("link", name="Force welfare line").count() == 1
    log = page.get_by_role("table", name=re.compile("Everyone who opened your record"))
    assert "Sam Sergeant" in log.inner_text()
    assert "Welfare conversation" in log.inner_text()

    # Asking for a conversation shows that it went.
    page.get_by_label("The wellbeing team").check()
    page.get_by_role("button", name="Ask for a conversation").click()
    assert "Your request has gone to the wellbeing team" in page.inner_text("main")
    officer.check("me-conversation-sent")

    page.get_by_role("link", name="Opt out of Trauma Tracker").click()
    assert officer.heading() == "Are you sure you want to opt out?"
    officer.check("opt-out-confirm")
    page.get_by_role("button", name="Yes, opt me out").click()
    assert "You have opted out" in page.inner_text("main")
    assert page.locator(".tt-figure").count() == 0
    officer.check("me-opted-out")

    page.get_by_role("link", name="Opt back in").click()
    officer.check("opt-in-confirm")
    page.get_by_role("button", name="Yes, opt me back in").click()
    assert "You have opted back in" in page.inner_text("main")
    assert "from 3 exposures" in page.locator(".tt-figure").nth(0).inner_text()


def test_a_supervisor_opens_their_team_views_a_person_and_closes_an_alert(visit, live):
    sergeant = visit("supervisor")
    sergeant.sign_in("P200")
    page = sergeant.page
    page.get_by_role("link", name="My team").click()
    assert sergeant.heading() == "Your team"
    sergeant.check("team")
    team = page.get_by_role("table", name=re.compile("people, sorted by"))
    names = team.locator("tbody th").all_inner_texts()
    assert [n.split()[0] for n in names][:1] == ["Alex"]  # most serious exposures first
    assert not any("Cal Optedout" in n for n in names)
    assert "1 person has opted out" in page.inner_text("main")
    team.get_by_role("link", name=re.compile("^Name")).click()
    sergeant.check("team-by-name")
    names = page.get_by_role("table", name=re.compile("people, sorted by")).locator("tbody th")
    assert [n.split()[0] for n in names.all_inner_texts()] == ["Alex", "Bea", "Dana"]

    page.get_by_role("link", name="Alex Officer").first.click()
    assert sergeant.heading() == "Why are you looking at this record?"
    page.get_by_role("button", name="Open the record").click()  # no reason: an error
    assert page.title().startswith("Error:")
    sergeant.check("person-reason-error")
    page.get_by_label("Something else (say what below)").check()
    page.get_by_role("button", name="Open the record").click()
    assert "Say why you are looking at this record" in page.inner_text(".govuk-error-summary")
    page.get_by_label("Note").fill("Checking in after a hard month")
    page.get_by_role("button", name="Open the record").click()
    assert sergeant.heading() == "Alex Officer's record"
    sergeant.check("person")

    page.get_by_role("link", name="Alerts", exact=True).click()
    sergeant.check("alerts")
    page.get_by_role("link", name=re.compile("Alex Officer.*Cluster")).click()
    assert "Tier-2-or-higher exposures in 30 days 3, at or above 3" in page.inner_text("main")
    sergeant.check("alert-open")
    page.get_by_role("button", name="Acknowledge alert").click()
    assert "Alert acknowledged" in page.inner_text("main")
    sergeant.check("alert-acknowledged")
    page.get_by_role("button", name="Record outcome and close the alert").click()
    assert "Choose the outcome of the conversation" in page.inner_text(".govuk-error-summary")
    sergeant.check("alert-outcome-error")
    page.get_by_label("Support offered").check()
    page.get_by_label("Note (optional)").fill("Spoke after the shift; TRiM offered")
    page.get_by_role("button", name="Record outcome and close the alert").click()
    assert "Outcome recorded" in page.inner_text("main")
    history = page.locator(".tt-history").inner_text()
    assert "Acknowledged by Sam Sergeant" in history and "Resolved by Sam Sergeant" in history
    sergeant.check("alert-resolved")


def test_a_new_supervisor_sees_who_joined_their_team(visit):
    sergeant = visit("handover")
    sergeant.sign_in("P200")
    sergeant.go("/team")
    handover = sergeant.page.get_by_role("table", name=re.compile("Handover"))
    text = handover.inner_text()
    assert "Dana Mover" in text and "Alex Officer" not in text
    assert "Suicide (tier 2)" in text


def test_the_previous_supervisor_no_longer_sees_the_person_who_moved(visit):
    previous = visit("previous-supervisor")
    previous.sign_in("P400")
    response = previous.go("/people/P401")
    assert response.status == 403
    previous.problems.clear()  # the browser reports the 403 itself as a console error
    previous.check("forbidden")
    response = previous.go("/no-such-page")
    assert response.status == 404
    previous.problems.clear()
    previous.check("not-found")


def _tab_to(page, matches, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies `matches` (a JS predicate on it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {matches})(document.activeElement)"):
            return
    raise AssertionError(f"never reached an element where {matches}")


def test_the_alert_journey_can_be_done_with_the_keyboard_alone(visit):
    sergeant = visit("keyboard")
    page = sergeant.page
    sergeant.go("/dev/login")
    _tab_to(page, "el.name === 'other_staff_id'")
    page.keyboard.type("P200")
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Sign in'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/me$"))
    _tab_to(page, "el.tagName === 'A' && el.textContent.trim() === 'Alerts'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/alerts$"))
    _tab_to(page, "el.tagName === 'A' && el.textContent.includes('Bea Constable')")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/alerts/\\d+$"))
    _tab_to(page, "el.textContent.trim() === 'Acknowledge alert'")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Alert acknowledged")
    _tab_to(page, "el.name === 'outcome'")
    page.keyboard.press("Space")  # the first outcome: support offered
    _tab_to(page, "el.name === 'note'")
    page.keyboard.type("Spoke by phone")
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Record outcome')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Outcome recorded")
    assert "Support offered" in page.inner_text("main")
    sergeant.check("keyboard-resolved")


def test_the_other_pages_pass_axe_too(visit):
    wellbeing = visit("wellbeing")
    page = wellbeing.page
    wellbeing.go("/dev/login")
    page.get_by_role("button", name="Sign in").click()  # nobody chosen: an error
    assert "Choose a person, or type a staff id" in page.inner_text(".govuk-error-summary")
    wellbeing.check("persona-picker-error")
    wellbeing.sign_in("P500", ("wellbeing",))
    wellbeing.check("me-no-exposure")
    page.get_by_role("link", name="Alerts", exact=True).click()
    wellbeing.check("alerts-queue")
    assert page.get_by_role("link", name=re.compile("Bea Constable")).count() == 1
    page.get_by_role("link", name="Show resolved alerts too").click()
    wellbeing.check("alerts-all")
    page.get_by_role("button", name="Sign out").click()
    assert wellbeing.heading() == "You have signed out"
    wellbeing.check("signed-out")


def test_pages_reflow_to_a_narrow_screen(visit):
    """WCAG 1.4.10: usable at 320 CSS pixels wide without scrolling sideways."""
    phone = visit("phone", width=320)
    phone.sign_in("P200")
    for path, name in (("/me", "me"), ("/team", "team"), ("/alerts", "alerts")):
        phone.go(path)
        phone.check(f"narrow-{name}")
        overflow = phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
