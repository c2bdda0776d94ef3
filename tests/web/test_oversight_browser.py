"""Issue 12's journeys in a real browser (Debian's chromium through Playwright), with axe-core
at zero violations on every page and a screenshot of each (TT_SCREENSHOTS, default
/tmp/tt-screens, outside git): wellbeing works the queue; the steering group sees the banner
after a bad edit, runs the tests and a backtest and reads a comparison; a leader sees
suppressed cells and exports the CSV; an auditor verifies the chain, finds a decision and
reads the access log; an admin retries a failed notification.

The browser, the live server and the Visit helper are tests/web/test_browser.py's.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.web.test_browser import live, visit  # noqa: F401 (fixtures; chromium and axe: conftest)

pytestmark = pytest.mark.slow


def _navigate(page, locator) -> None:
    """Click something that loads a page, and wait until the new page has loaded (so that
    what is counted next is on it)."""
    with page.expect_navigation():
        locator.click()


def _alert_link(page, name: str):
    return page.get_by_role("link", name=re.compile(name))


def test_wellbeing_works_the_queue_and_records_an_outcome(visit, live):  # noqa: F811
    team = visit("queue")
    team.sign_in("P500", ("wellbeing",))
    page = team.page
    _navigate(page, page.get_by_role("link", name="Wellbeing queue"))
    assert team.heading() == "Wellbeing queue"
    team.check("queue")
    queue = page.get_by_role("table", name=re.compile("not yet resolved"))
    assert queue.locator("tbody tr").count() == len(live.force.rule_alerts)

    page.get_by_text("Filter the queue").click()
    page.get_by_label("Priority").select_option("high")
    _navigate(page, page.get_by_role("button", name="Apply filters"))
    team.check("queue-filtered")
    queue = page.get_by_role("table", name=re.compile("not yet resolved, filtered"))
    assert queue.locator("tbody tr").count() == 1
    assert "Bea Constable" in queue.inner_text()

    page.get_by_label("Assign the alert about Bea Constable").select_option("P500")
    _navigate(page, page.get_by_role("button", name="Assign the alert about Bea Constable"))
    assert "assigned to Wren Wellbeing" in page.inner_text("main")
    assert page.get_by_label("Priority").input_value() == "high"  # the filters were kept
    team.check("queue-assigned")

    _navigate(page, _alert_link(page, "Bea Constable.*TRiM check"))
    _navigate(page, page.get_by_role("button", name="Acknowledge alert"))
    page.get_by_label("Referred (Occupational Health, TRiM or other support)").check()
    _navigate(page, page.get_by_role("button", name="Record outcome and close the alert"))
    assert "Outcome recorded" in page.inner_text("main")
    team.check("queue-alert-resolved")
    _navigate(page, page.get_by_role("link", name="Wellbeing queue"))
    assert _alert_link(page, "Bea Constable.*TRiM check").count() == 0
    follow_ups = page.locator("#follow-ups")
    assert follow_ups.count() == 1
    team.check("queue-after")


def test_the_steering_group_checks_a_bad_edit_tests_backtests_and_compares(
    visit,  # noqa: F811
    live,  # noqa: F811
    tmp_path,
):
    steering = visit("steering")
    steering.sign_in("P210", ("steering",))
    page = steering.page
    _navigate(page, page.get_by_role("link", name="Rules", exact=True))
    assert steering.heading() == "Rules workbench"
    steering.check("workbench")
    assert page.get_by_text("Rule files have problems").count() == 0

    # A bad edit on disk: the banner names the file and line on every page.
    rules = live.force.rules_dir
    cluster = rules / "interventions" / "cluster.yaml"
    good = cluster.read_text()
    cluster.write_text(good.replace("severity: medium", "severity: urgent", 1))
    page.reload()
    banner = page.get_by_role("region", name="Rule files have problems")
    assert re.search(r"cluster\.yaml:\d+: ", banner.inner_text())
    assert "still running the last good ruleset" in banner.inner_text()
    steering.check("workbench-banner")
    _navigate(page, page.get_by_role("link", name="My record"))
    assert page.get_by_role("region", name="Rule files have problems").count() == 1
    steering.check("me-banner")
    cluster.write_text(good)  # fixed again

    _navigate(page, page.get_by_role("link", name="Rules", exact=True))
    assert page.get_by_role("region", name="Rule files have problems").count() == 0
    _navigate(page, page.get_by_role("button", name="Run the tests"))
    assert re.search(r"All \d+ tests passed", page.inner_text("#test-results"))
    steering.check("workbench-tests")

    today = live.force.now.date()
    page.get_by_label("From", exact=True).fill("1 June")
    _navigate(page, page.get_by_role("button", name="Run the backtest"))
    summary = page.locator(".govuk-error-summary")
    assert "Enter the date as year-month-day" in summary.inner_text()
    assert page.title().startswith("Error:")
    steering.check("workbench-backtest-error")
    page.get_by_label("From", exact=True).fill(today.replace(day=1).isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    _navigate(page, page.get_by_role("button", name="Run the backtest"))
    results = page.locator("#backtest-results")
    assert results.locator("svg.tt-chart__svg rect").count() >= 1
    assert (
        "Response 1" in results.get_by_role("table", name="Alerts per unit, by rule").inner_text()
    )
    steering.check("workbench-backtest")

    candidate = tmp_path / "candidate"
    shutil.copytree(rules, candidate)
    changed = candidate / "interventions" / "cluster.yaml"
    changed.write_text(good.replace("30d >= 3", "30d >= 4"))
    page.get_by_label("Changed rules folder").fill(str(candidate))
    page.get_by_label("Backtest from").fill(today.replace(day=1).isoformat())
    _navigate(page, page.get_by_role("button", name="Compare with the live rules"))
    comparison = page.locator("#comparison")
    assert "Changed" in comparison.inner_text() and "30d >= 4" in comparison.inner_text()
    change = comparison.get_by_role("table", name=re.compile("Alerts in the backtest"))
    assert "cluster-30d" in change.inner_text()
    steering.check("workbench-comparison")

    _navigate(page, page.get_by_role("link", name="Rule effectiveness from recorded outcomes"))
    assert steering.heading() == "Rule effectiveness"
    steering.check("effectiveness")


def test_a_leader_sees_suppressed_cells_and_exports_the_csv(visit):  # noqa: F811
    leader = visit("leader")
    leader.sign_in("P700", ("leader",))
    page = leader.page
    _navigate(page, page.get_by_role("link", name="Overview"))
    assert leader.heading() == "Overview"
    leader.check("overview")
    table = page.locator("#overview-table")
    suppressed = table.locator("tr.tt-suppressed")
    assert suppressed.count() >= 1
    assert "fewer than 5 people" in suppressed.first.inner_text()
    assert page.locator("svg.tt-heatmap").count() == 1

    with page.expect_download() as download:
        page.get_by_role("link", name="Download this table as CSV").click()
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    shown = table.locator("tbody tr")
    assert len(rows) == shown.count()
    for index, row in enumerate(rows):
        cells = shown.nth(index).inner_text()
        assert row["name"] in cells
        assert (row["suppressed"] == "yes") == ("Suppressed" in cells)

    _navigate(page, page.get_by_role("link", name="By area"))
    _navigate(page, page.get_by_role("link", name="Show alerts per person"))
    page.get_by_text("The heatmap's figures as a table").click()
    leader.check("overview-area-alerts")


def test_an_auditor_verifies_the_chain_finds_a_decision_and_reads_the_access_log(
    visit,  # noqa: F811
    live,  # noqa: F811
):
    with live.force.engine.connect() as conn:
        rule = conn.execute(sa.text("SELECT rule_id FROM decisions WHERE seq = 2")).scalar_one()
    auditor = visit("auditor")
    auditor.sign_in("P600", ("auditor",))
    page = auditor.page
    _navigate(page, page.get_by_role("link", name="Audit"))
    assert auditor.heading() == "Audit"
    _navigate(page, page.get_by_role("button", name="Verify the chain now"))
    assert "The chain holds" in page.inner_text("#chain-result")
    auditor.check("audit-chain")

    with live.force.engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET rule_id = 'edited' WHERE seq = 2"))
    _navigate(page, page.get_by_role("button", name="Verify the chain now"))
    assert "The chain is broken" in page.inner_text("#chain-result")
    assert "(sequence 2)" in page.inner_text("#chain-result")
    auditor.check("audit-chain-broken")
    with live.force.engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET rule_id = :r WHERE seq = 2"), {"r": rule})

    _navigate(page, page.get_by_role("link", name="Decision log"))
    page.get_by_label("Person (staff id)").fill("P101")
    _navigate(page, page.get_by_role("button", name="Search the decision log"))
    auditor.check("audit-decisions")
    _navigate(page, page.get_by_role("link", name=re.compile("about Bea Constable")).first)
    assert auditor.heading().startswith("Decision ")
    auditor.check("audit-decision")
    page.get_by_label("Note (optional)").fill("Quarterly sample")
    _navigate(page, page.get_by_role("button", name="Record an audit reason and show what it saw"))
    assert "You recorded an audit reason" in page.inner_text("main")
    auditor.check("audit-decision-detail")

    _navigate(page, page.get_by_role("link", name="Access log"))
    page.get_by_label("Reason").select_option("audit")
    _navigate(page, page.get_by_role("button", name="Search the access log"))
    log = page.get_by_role("table", name=re.compile("entr"))
    assert "Quarterly sample" in log.inner_text() and "Ari Auditor" in log.inner_text()
    auditor.check("audit-access-log")


def test_an_admin_retries_a_failed_notification(visit, live):  # noqa: F811
    with live.force.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable' "
                "WHERE id = (SELECT MIN(id) FROM outbox)"
            )
        )
    from trauma_tracker.sinks import MailSink

    # The demo's layout beside the database: a READY marker and what its sinks received.
    folder = Path(live.force.url.removeprefix("sqlite:///")).parent
    (folder / "READY").write_text("prepared\n")
    mail = MailSink(folder / "mail").start()
    try:
        message = EmailMessage()
        message["From"], message["To"] = "tt@demo.example", "sam.sergeant@force.example"
        message["Subject"] = "A welfare conversation for Alex Officer"
        message.set_content("Alex Officer may benefit from a welfare conversation.")
        with smtplib.SMTP(mail.host, mail.port) as smtp:
            smtp.send_message(message)
    finally:
        mail.stop()
    admin = visit("admin")
    admin.sign_in("P800", ("admin",))
    page = admin.page
    _navigate(page, page.get_by_role("link", name="Administration"))
    assert admin.heading() == "Administration"
    admin.check("admin")
    _navigate(page, page.get_by_role("link", name="1 failed notification"))
    assert "550 mailbox unavailable" in page.inner_text("main")
    admin.check("admin-outbox")
    _navigate(page, page.get_by_role("button", name=re.compile("^Retry")))
    assert "will be sent again in the next delivery run" in page.inner_text("main")
    admin.check("admin-outbox-retried")
    _navigate(page, page.get_by_role("link", name="Waiting to be sent"))
    waiting = page.get_by_role("table", name=re.compile(r"^\d+ messages?$"))
    assert waiting.get_by_role("button", name=re.compile("^Retry")).count() == 0
    assert waiting.get_by_text("Waiting to be sent").count() >= 1
    pages = (
        ("Quarantined rows", "admin-quarantine"),
        ("Held rows", "admin-held"),
        ("Demo messages", "admin-demo-messages"),
    )
    for name, shot in pages:
        _navigate(page, page.get_by_role("link", name=name))
        admin.check(shot)
    assert "A welfare conversation for Alex Officer" in page.inner_text("main")


def test_the_oversight_pages_reflow_to_a_narrow_screen(visit):  # noqa: F811
    """WCAG 1.4.10 at 320 CSS pixels: wide tables and the heatmap scroll in their own box."""
    phone = visit("oversight-phone", width=320)
    phone.sign_in("P700", ("wellbeing", "steering", "leader", "auditor", "admin"))
    for path, name in (
        ("/queue", "queue"),
        ("/rules", "rules"),
        ("/overview", "overview"),
        ("/audit/decisions", "decisions"),
        ("/admin", "admin"),
    ):
        phone.go(path)
        phone.check(f"narrow-{name}")
        overflow = phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
