"""Issue 12's pages, as the people who use them, on SQLite and PostgreSQL: the wellbeing queue,
the steering group's rules workbench (and its banner), the leaders' overview, the auditors'
pages and the administrators'; a persona matrix of every route of these pages, and a walk
of the URL map that fails for one of their routes without a decision or a matrix row.

The force is tests/web/conftest.py's; the steering group is P210 (Ira Inspector) holding the
steering role, as in tests/oversight.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import smtplib
import sqlite3
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.forcedata import person
from tests.web.conftest import PERSONAS, csrf_token, sign_in
from web.auth import PERMISSION_ATTRIBUTE

PAGE_PERSONAS = {**PERSONAS, "steering": ("P210", ("steering",))}
AREAS = ("queue", "rules", "overview", "audit", "admin")
WELLBEING = frozenset({"wellbeing"})
STEERING = frozenset({"steering"})
LEADERS = frozenset({"leader", "wellbeing"})
AUDITOR = frozenset({"auditor"})
ADMIN = frozenset({"admin"})


def sign_in_persona(client, persona: str) -> str | None:
    staff_id, roles = PAGE_PERSONAS[persona]
    if staff_id is not None:
        sign_in(client, staff_id, roles)
    return staff_id


def fail_first_message(engine: sa.Engine) -> int:
    """Make the first outbox message a failed one (a mailbox that refused it)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable' "
                "WHERE id = (SELECT MIN(id) FROM outbox)"
            )
        )
        return conn.execute(sa.text("SELECT MIN(id) FROM outbox")).scalar_one()


def text(response) -> str:
    return response.get_data(as_text=True)


def token_of(client, url: str) -> str:
    return csrf_token(text(client.get(url)))


# --- who may ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    url: str  # {alert}: P101's TRiM alert; {decision}: its decision; {message}: a failed one
    allowed: frozenset[str]
    form: dict | None = None


CASES = [
    Case("queue.work_queue", "GET", "/queue?severity=high", WELLBEING),
    Case("rules.workbench_page", "GET", "/rules", STEERING),
    Case("rules.effectiveness_page", "GET", "/rules/effectiveness", STEERING),
    Case("overview.overview", "GET", "/overview?by=department", LEADERS),
    Case("audit.audit_home", "GET", "/audit", AUDITOR),
    Case("audit.decisions", "GET", "/audit/decisions?rule_id=trim-check", AUDITOR),
    Case("audit.decision", "GET", "/audit/decisions/{decision}", AUDITOR),
    Case("audit.decision", "GET", "/audit/decisions/no-such-decision", AUDITOR),
    Case("audit.access_log", "GET", "/audit/access-log", AUDITOR),
    Case("admin.health", "GET", "/admin", ADMIN),
    Case("admin.quarantine", "GET", "/admin/quarantine", ADMIN),
    Case("admin.held", "GET", "/admin/held", ADMIN),
    Case("admin.outbox", "GET", "/admin/outbox?status=all", ADMIN),
    Case("admin.demo_messages", "GET", "/admin/demo-messages", ADMIN),  # 404: not the demo
    # writes and runs (each with the form's CSRF token)
    Case("queue.assign", "POST", "/queue/{alert}/assign", WELLBEING, {"assignee": "P500"}),
    Case("rules.run_tests", "POST", "/rules/tests", STEERING),
    Case("rules.backtest", "POST", "/rules/backtest", STEERING, {"step": "week"}),
    Case("rules.compare_folder", "POST", "/rules/compare", STEERING, {"folder": "{rules}"}),
    Case("audit.verify", "POST", "/audit/verify", AUDITOR),
    Case("audit.decision", "POST", "/audit/decisions/{decision}", AUDITOR),
    Case("admin.retry", "POST", "/admin/outbox/{message}/retry", ADMIN),
]


def _references(web_force) -> dict[str, str]:
    message = fail_first_message(web_force.engine)
    alert = web_force.alerts["P101"]
    with web_force.engine.connect() as conn:
        decision = conn.execute(
            sa.text("SELECT decision_id FROM decisions WHERE alert_id = :a"), {"a": alert}
        ).scalar_one()
    return {
        "alert": str(alert),
        "decision": decision,
        "message": str(message),
        "rules": str(web_force.rules_dir),
    }


@pytest.mark.parametrize("persona", list(PAGE_PERSONAS))
def test_each_persona_may_open_what_the_matrix_says_and_nothing_else(persona, client, web_force):
    references = _references(web_force)
    if persona == "wellbeing":
        sign_in_persona(client, persona)
        client.get("/queue")  # the wellbeing member P500 joins the queue's team
    if sign_in_persona(client, persona) is None:
        token = token_of(client, "/dev/login")
    else:
        token = token_of(client, "/me/opt-out")
    wrong = []
    for case in CASES:
        url = case.url.format(**references)
        if case.method == "POST":
            form = {k: v.format(**references) for k, v in (case.form or {}).items()}
            response = client.post(url, data={"csrf_token": token, **form})
        else:
            response = client.get(url)
        assert response.status_code != 500, (case.method, url)
        if persona == "anonymous":
            denied = response.status_code == 302 and "/sign-in-required" in response.location
        else:
            denied = response.status_code == 403
        if denied == (persona in case.allowed):
            wrong.append((case.method, url, response.status_code))
    assert wrong == []


def test_every_route_of_these_pages_has_a_decision_and_a_row_in_the_matrix(app):
    undecided, unlisted = [], []
    listed = {(c.endpoint, c.method) for c in CASES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in AREAS:
            continue
        if getattr(app.view_functions[rule.endpoint], PERMISSION_ATTRIBUTE, None) is None:
            undecided.append(str(rule))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in listed:
                unlisted.append(f"{method} {rule}")
    assert undecided == []
    assert unlisted == []


def test_a_form_without_its_csrf_token_is_refused(client, web_force):
    sign_in_persona(client, "admin")
    message = fail_first_message(web_force.engine)
    response = client.post(f"/admin/outbox/{message}/retry")
    assert response.status_code == 400
    with web_force.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM outbox WHERE id = :i"), {"i": message})
        assert status.scalar_one() == "failed"


def test_the_navigation_offers_each_person_their_own_pages(client):
    expected = {
        "wellbeing": ["Wellbeing queue", "Overview"],
        "steering": ["Rules"],
        "leader": ["Overview"],
        "auditor": ["Audit"],
        "admin": ["Administration"],
        "supervisor": [],
    }
    offered = ("Wellbeing queue", "Overview", "Rules", "Audit", "Administration")
    for persona, links in expected.items():
        sign_in_persona(client, persona)
        page = text(client.get("/me"))
        nav = page[page.index('id="navigation"') :].split("</ul>")[0]
        texts = re.findall(r'__link"[^>]*>\s*(?:<strong[^>]*>)?([^<]+?)\s*<', nav)
        shown = [name for name in texts if name in offered]
        assert shown == links, persona


# --- the wellbeing queue ---------------------------------------------------------------------


def test_wellbeing_sees_every_open_alert_filters_it_and_assigns_one(client, web_force):
    sign_in_persona(client, "wellbeing")
    page = text(client.get("/queue"))
    trim, cluster = web_force.alerts["P101"], web_force.alerts["P100"]
    assert f'href="/alerts/{trim}"' in page and f'href="/alerts/{cluster}"' in page
    assert "no way to acknowledge several at once" in page
    assert "acknowledge all" not in page.lower()
    high = text(client.get("/queue?severity=high"))
    assert f'href="/alerts/{trim}"' in high and f'href="/alerts/{cluster}"' not in high
    assert "No alert matches these filters" in text(client.get("/queue?escalated=yes"))
    assert "No alert matches these filters" in text(client.get("/queue?overdue=yes"))
    elsewhere = text(client.get("/queue?unit=T2")).split("TRiM follow-ups due this week")[0]
    assert f'href="/alerts/{trim}"' not in elsewhere

    response = client.post(
        f"/queue/{trim}/assign",
        data={"csrf_token": csrf_token(page), "assignee": "P500", "keep_severity": "high"},
    )
    assert response.status_code == 302
    assert response.location.endswith(f"/queue?severity=high#alert-{trim}")
    page = text(client.get("/queue?severity=high"))
    assert f"Alert {trim} assigned to Wren Wellbeing" in page
    assert "Wren Wellbeing" in page
    mine = text(client.get("/queue?assignee=P500"))
    assert f'href="/alerts/{trim}"' in mine and f'href="/alerts/{cluster}"' not in mine
    with web_force.engine.connect() as conn:
        action = conn.execute(
            sa.text("SELECT action FROM alert_events WHERE alert_id = :a ORDER BY id DESC"),
            {"a": trim},
        ).first()
    assert action.action == "assigned"


def test_assigning_to_someone_outside_the_team_says_so(client, web_force):
    sign_in_persona(client, "wellbeing")
    page = text(client.get("/queue"))
    trim = web_force.alerts["P101"]
    client.post(f"/queue/{trim}/assign", data={"csrf_token": csrf_token(page), "assignee": "P100"})
    page = text(client.get("/queue"))
    assert "Not a valid choice" in page or "not a member of the wellbeing team" in page


def test_the_follow_ups_list_shows_this_weeks_trim_reminders(client, web_force):
    from engine.oversight.queue import follow_ups_this_week
    from web.pages.queue import follow_up_name

    sign_in_persona(client, "wellbeing")
    page = text(client.get("/queue"))
    assert "TRiM follow-ups due this week" in page
    due = follow_ups_this_week(web_force.engine, web_force.now)
    if due:
        assert f"{len(due)} follow-up" in page
        assert follow_up_name(due[0]["label"]) in page and "check-in" in page
    else:
        assert "No TRiM follow-ups are due this week" in page


# --- the rules workbench ---------------------------------------------------------------------


def _break_a_rule(rules_dir: Path) -> None:
    path = rules_dir / "interventions" / "cluster.yaml"
    path.write_text(path.read_text().replace("severity: medium", "severity: urgent", 1))


def test_the_workbench_lists_every_rule_with_its_version_live_date_and_tests(client, web_force):
    from engine.rules.pack import load_pack

    sign_in_persona(client, "steering")
    page = text(client.get("/rules"))
    pack = load_pack(web_force.rules_dir)
    for rule in pack.rules:
        assert rule.title in page and rule.version in page
    assert page.count("Passing</strong>") == len(pack.rules)
    assert "Not yet live" not in page  # the force was evaluated: every rule is live
    assert "never changes a file" in page
    assert "Rule files have problems" not in page


def test_a_bad_edit_shows_the_banner_to_steering_and_admin_on_every_page(client, web_force):
    sign_in_persona(client, "steering")
    running = text(client.get("/rules"))
    _break_a_rule(web_force.rules_dir)
    for persona, urls in (("steering", ("/me", "/rules")), ("admin", ("/me", "/admin"))):
        sign_in_persona(client, persona)
        for url in urls:
            page = text(client.get(url))
            assert "Rule files have problems" in page, (persona, url)
            assert re.search(r"cluster\.yaml:\d+: ", page), (persona, url)
            assert "still running the last good ruleset" in page
    sign_in_persona(client, "steering")
    page = text(client.get("/rules"))
    assert "the last good one: the files are not used" in page
    version = re.search(r"Running ruleset</dt>\s*<dd[^>]*><code>(\w+)</code>", running).group(1)
    assert version in page
    assert re.search(r"<code>interventions/cluster\.yaml:\d+: ", page)  # relative to the folder
    assert page.count("the files are broken") == 4  # the stored ruleset keeps no tests
    tests = text(client.post("/rules/tests", data={"csrf_token": csrf_token(page)}))
    assert 'href="#tests-run"' in tests and "fix the problems, then run the tests" in tests
    for persona in ("wellbeing", "leader", "auditor", "officer"):
        sign_in_persona(client, persona)
        assert "Rule files have problems" not in text(client.get("/me")), persona


def test_steering_runs_the_tests_and_sees_a_failure_with_its_line(client, web_force):
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    page = text(client.post("/rules/tests", data={"csrf_token": token}))
    assert re.search(r"All \d+ tests passed", page)
    path = web_force.rules_dir / "interventions" / "trim-check.yaml"
    path.write_text(path.read_text().replace("expect: no_fire", "expect: fire", 1))
    page = text(client.post("/rules/tests", data={"csrf_token": token}))
    assert "1 failed" in page
    assert re.search(r"trim-check\.yaml:\d+: rule trim-check, tier-2 exposure", page)
    assert "1 failing" in text(client.get("/rules"))


def test_a_backtest_shows_alerts_per_month_per_rule_and_per_unit(client, web_force):
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    end = web_force.now.date()
    start = end.replace(day=1)
    page = text(
        client.post(
            "/rules/backtest",
            data={"csrf_token": token, "from": start.isoformat(), "to": end.isoformat()},
        )
    )
    assert "Alerts per month, by rule" in page
    assert "<svg" in page and "Alerts per unit, by rule" in page
    assert "Response 1" in page  # the team of P100 and P101, by name
    total = re.search(r"(\d+) alerts would have been raised", page)
    assert total and int(total.group(1)) >= 1


def test_a_backtest_on_a_database_never_evaluated_scores_it_rather_than_showing_zeros(
    client, web_force
):
    """Before the service's first evaluation nothing is scored: the backtest scores the stored
    records itself (and keeps nothing), so the steering group sees what the rules would do."""
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    end = web_force.now.date()
    form = {"csrf_token": token, "from": end.replace(day=1).isoformat(), "to": end.isoformat()}

    def total() -> int:
        found = re.search(
            r"(\d+) alerts would have been raised", text(client.post("/rules/backtest", data=form))
        )
        assert found
        return int(found.group(1))

    evaluated = total()
    assert evaluated >= 1
    with web_force.engine.begin() as conn:  # as if never evaluated
        for table in ("exposures", "snapshots", "evaluations"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    assert total() == evaluated
    with web_force.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exposures")).scalar_one() == 0


def test_a_backtest_with_a_bad_period_names_the_field(client, web_force):
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    page = text(
        client.post(
            "/rules/backtest", data={"csrf_token": token, "from": "2026-13-01", "to": "yesterday"}
        )
    )
    assert page.count('href="#backtest-from"') == 1 and 'href="#backtest-to"' in page
    assert "<title>Error:" in page
    page = text(
        client.post(
            "/rules/backtest", data={"csrf_token": token, "from": "2020-01-01", "to": "2026-01-01"}
        )
    )
    assert "At most 20 weeks here, so no later than 2020-05-13" in page
    assert 'href="#backtest-to"' in page


def test_a_changed_folder_is_compared_with_the_live_rules_side_by_side(client, web_force, tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(web_force.rules_dir, candidate)
    path = candidate / "interventions" / "cluster.yaml"
    original = path.read_text()
    assert "tier2plus_exposures_30d >= 3" in original
    path.write_text(
        original.replace("tier2plus_exposures_30d >= 3", "tier2plus_exposures_30d >= 4")
    )
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    end = web_force.now.date()
    page = text(
        client.post(
            "/rules/compare",
            data={
                "csrf_token": token,
                "folder": str(candidate),
                "from": (end.replace(day=1)).isoformat(),
                "to": end.isoformat(),
            },
        )
    )
    assert f"{candidate} beside the live rules" in page
    assert "Changed</strong>" in page and "Unchanged</strong>" in page
    assert "tier2plus_exposures_30d &gt;= 3" in page and "tier2plus_exposures_30d &gt;= 4" in page
    change = re.search(
        r"<th[^>]*>cluster-30d</th>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)</td>", page
    )
    assert change and int(change.group(1)) > int(change.group(2))
    assert original == (web_force.rules_dir / "interventions" / "cluster.yaml").read_text()


def test_comparing_a_folder_that_is_not_one_says_why(client, web_force, tmp_path):
    sign_in_persona(client, "steering")
    token = token_of(client, "/rules")
    outside = tmp_path.parent / f"elsewhere-{tmp_path.name}"
    shutil.copytree(web_force.rules_dir, outside)  # a rules folder, but not beside the live one
    for folder, message in (
        ("relative/path", "give the full path"),
        (str(outside), "beside the live one"),
        (str(web_force.rules_dir / ".." / ".." / outside.name), "beside the live one"),
        ("/etc", "beside the live one"),
        (str(tmp_path / "missing"), "is not a folder on the server"),
        (str(tmp_path), "has no routing.yaml"),
    ):
        page = text(client.post("/rules/compare", data={"csrf_token": token, "folder": folder}))
        assert 'href="#compare-folder"' in page and message in page.lower(), folder


def test_rule_effectiveness_for_a_period(client, web_force):
    from engine.alerts.lifecycle import resolve

    with web_force.engine.begin() as conn:
        resolve(conn, web_force.alerts["P100"], "P200", "false_positive", web_force.now)
    sign_in_persona(client, "steering")
    page = text(client.get("/rules/effectiveness"))
    row = re.search(r"cluster-30d</span></th>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r">([^<>]*)</td>", row)
    assert cells[0] == "1"  # raised
    assert cells[-1] == "100.0%"  # the one recorded outcome was a false positive
    page = text(client.get("/rules/effectiveness?from=2020-01-01&to=2020-12-31"))
    assert "cluster-30d" in page and "100.0%" not in page
    bad = text(client.get("/rules/effectiveness?from=2020-12-31&to=2020-01-01"))
    assert "The start date must be on or before the end date" in bad


# --- the overview ----------------------------------------------------------------------------


def test_the_overview_suppresses_small_units_and_says_why(client, web_force):
    sign_in_persona(client, "leader")
    page = text(client.get("/overview?by=team"))
    assert "Suppressed</strong>" in page
    assert "fewer than 5 people" in page
    # Robin Other and Jo Elsewhere make team Response 2: two people, suppressed.
    row = re.search(r"Response 2</th>(.*?)</tr>", page, re.S).group(1)
    assert "Suppressed" in row and re.search(r">\s*2\s*<", row) is None
    assert "<svg" in page and "The heatmap's figures as a table" in page
    assert "Cal Optedout" not in page


def test_the_csv_export_is_exactly_what_the_table_shows(client, web_force):
    sign_in_persona(client, "leader")
    page = text(client.get("/overview?by=team"))
    link = re.search(r'href="([^"]*aggregates\.csv[^"]*view=table[^"]*)"', page).group(1)
    response = client.get(link.replace("&amp;", "&"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text(response))))
    for row in rows:
        shown = re.search(rf"{re.escape(row['name'])}(?: \(total\))?</th>(.*?)</tr>", page, re.S)
        assert shown, row["name"]
        if row["suppressed"] == "yes":
            assert row["people"] == "" and "Suppressed" in shown.group(1)
        else:
            assert f">{row['people']}</td>" in shown.group(1)


# --- audit -----------------------------------------------------------------------------------


def test_an_auditor_finds_a_decision_and_sees_its_inputs_only_with_a_reason(client, web_force):
    sign_in_persona(client, "auditor")
    page = text(client.get("/audit/decisions?staff_id=P101&rule_id=trim-check"))
    found = re.findall(r'href="/audit/decisions/([0-9a-f]+)"', page)
    assert len(found) == 1
    url = f"/audit/decisions/{found[0]}"
    page = text(client.get(url))
    assert "trim-check" in page and "Ruleset version" in page and "Criteria version" in page
    assert "Record an audit reason and show what it saw" in page
    assert "did not hold" in page or ": held" in page
    with web_force.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT COUNT(*) FROM access_log")).scalar_one()
    page = text(client.post(url, data={"csrf_token": csrf_token(page), "note": "Annual check"}))
    assert "You recorded an audit reason" in page
    assert "Replayed through its ruleset" in page
    with web_force.engine.connect() as conn:
        entry = conn.execute(
            sa.text("SELECT viewer_id, staff_id, reason, note FROM access_log ORDER BY id DESC")
        ).first()
        after = conn.execute(sa.text("SELECT COUNT(*) FROM access_log")).scalar_one()
    assert after == before + 1
    assert tuple(entry) == ("P600", "P101", "audit", "Annual check")
    log = text(client.get("/audit/access-log?viewer_id=P600&reason=audit"))
    assert "Annual check" in log and "Bea Constable" in log
    assert "1 entry" in log


def test_an_auditor_verifies_the_chain_and_sees_the_first_bad_entry(client, web_force):
    from engine.alerts.audit import write_checkpoint

    with web_force.engine.begin() as conn:
        signed = write_checkpoint(conn, b"checkpoint-key-for-tests", web_force.now)
    sign_in_persona(client, "auditor")
    page = text(client.get("/audit"))
    checkpoints = page.split('id="checkpoints"')[1]
    assert "The 1 newest checkpoints" in checkpoints
    assert signed["checkpoint"]["entry_hash"][:16] in checkpoints and "Yes</strong>" in checkpoints
    assert signed["key_id"] in checkpoints
    page = text(client.post("/audit/verify", data={"csrf_token": csrf_token(page)}))
    assert "The chain holds" in page
    with web_force.engine.begin() as conn:
        seq, decision = conn.execute(
            sa.text("SELECT seq, decision_id FROM decisions ORDER BY seq LIMIT 1")
        ).one()
        conn.execute(sa.text("UPDATE decisions SET rule_id = 'edited' WHERE seq = :s"), {"s": seq})
    page = text(client.post("/audit/verify", data={"csrf_token": csrf_token(page)}))
    assert "The chain is broken" in page
    assert f"/audit/decisions/{decision}" in page and f"(sequence {seq})" in page


def test_the_decision_log_search_names_a_bad_date(client):
    sign_in_persona(client, "auditor")
    page = text(client.get("/audit/decisions?from=31/01/2025"))
    assert 'href="#from"' in page and "<title>Error:" in page
    assert text(client.get("/audit/decisions/nothing-like-this")) and (
        client.get("/audit/decisions/nothing-like-this").status_code == 404
    )


# --- administration --------------------------------------------------------------------------


def test_an_admin_reads_the_health_pages_and_retries_a_failed_message(client, web_force):
    message = fail_first_message(web_force.engine)
    sign_in_persona(client, "admin")
    page = text(client.get("/admin"))
    assert "Ingest runs" in page and "OK</strong>" in page
    assert "1 failed notification" in page
    outbox = text(client.get("/admin/outbox"))
    assert "550 mailbox unavailable" in outbox and "Retry<span class" in outbox
    response = client.post(
        f"/admin/outbox/{message}/retry?status=failed", data={"csrf_token": csrf_token(outbox)}
    )
    assert response.status_code == 302
    page = text(client.get(response.location))
    assert f"Message {message} will be sent again" in page
    with web_force.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM outbox WHERE id = :i"), {"i": message})
        assert status.scalar_one() == "pending"
    response = client.post(
        f"/admin/outbox/{message}/retry", data={"csrf_token": csrf_token(outbox)}
    )
    assert "only a failed one is retried" in text(client.get(response.location))


def test_quarantined_and_held_rows_show_file_line_field_and_reason(client, web_force, tmp_path):
    from engine.ingest.batches import Ingestor
    from engine.ingest.files import ingest_files
    from tests.feedfiles import write_csv

    bad = dict(person("P990", display_name="Bad Row")[1], service_start="2015-13-01")
    files = [
        write_csv(tmp_path / "people_9.csv", [person("P991")[1], bad]),
        write_csv(
            tmp_path / "cc_deployments_9.csv",
            [{"incident_urn": "INC-1", "staff_id": "P999", "role": "attending"}],
        ),
    ]
    list(ingest_files(Ingestor(web_force.engine), files))
    sign_in_persona(client, "admin")
    page = text(client.get("/admin/quarantine"))
    assert "people_9.csv" in page and "service_start" in page and "1 quarantined row" in page
    row = re.search(r"people_9\.csv</th>(.*?)</tr>", page, re.S).group(1)
    assert ">3</td>" in row  # the header is line 1, the bad row line 3
    assert "Bad Row" not in page  # the row's contents stay in the database
    held = text(client.get("/admin/held"))
    assert "P999" in held and "cc_deployments_9.csv" in held
    assert "people_9.csv" in text(client.get("/admin"))


def test_the_demo_messages_page_reads_what_the_local_sinks_received(tmp_path, web_force):
    """The demo's mail server and Teams webhook (trauma_tracker.sinks) keep what they get in
    the demo folder beside its database; the admin reads it there."""
    from tests.web.conftest import SECRET_KEY
    from trauma_tracker.settings import Settings, WebSettings
    from trauma_tracker.sinks import MailSink, TeamsSink
    from web import create_app

    folder = tmp_path / "demo-data"
    folder.mkdir()
    database = folder / "tracker.sqlite"
    if not web_force.url.startswith("sqlite:///"):
        pytest.skip("the demo keeps its database in a SQLite file")
    source = sqlite3.connect(web_force.url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(database)
    source.backup(copy)  # the live file may have a write-ahead log beside it
    source.close()
    copy.close()
    (folder / "READY").write_text("prepared\n")
    mail = MailSink(folder / "mail").start()
    teams = TeamsSink(folder / "teams").start()
    try:
        message = EmailMessage()
        message["From"], message["To"] = "tt@demo.example", "sam.sergeant@force.example"
        message["Subject"] = "A welfare conversation for Alex Officer"
        message.set_content("Alex Officer may benefit from a welfare conversation.")
        with smtplib.SMTP(mail.host, mail.port) as smtp:
            smtp.send_message(message)
        block = {"type": "TextBlock", "text": "Bea Constable: TRiM check"}
        card = {"type": "message", "attachments": [{"content": {"body": [block]}}]}
        assert requests.post(teams.url, json=card, timeout=5).status_code == 202
    finally:
        mail.stop()
        teams.stop()
    settings = Settings(
        database_url=f"sqlite:///{database}",
        rules_dir=web_force.rules_dir,
        secret_key=SECRET_KEY,
        web=WebSettings(dev_login=True),
    )
    app = create_app(settings, testing=True)
    try:
        client = app.test_client()
        sign_in_persona(client, "admin")
        assert "Demo messages</a>" in text(client.get("/admin"))
        page = text(client.get("/admin/demo-messages"))
        assert "A welfare conversation for Alex Officer" in page
        assert "sam.sergeant@force.example" in page
        assert "Bea Constable: TRiM check" in page
        sign_in_persona(client, "leader")
        assert client.get("/admin/demo-messages").status_code == 403
    finally:
        app.extensions["tt"].dispose()


def test_a_long_queue_comes_in_pages_in_the_same_order(client, web_force, monkeypatch):
    from web.pages import queue as queue_page

    monkeypatch.setattr(queue_page, "PAGE", 2)  # the force has three open alerts
    sign_in_persona(client, "wellbeing")
    first = text(client.get("/queue"))
    assert "3 alerts not yet resolved (showing 1 to 2)" in first and "Page 1 of 2" in first
    second = text(client.get("/queue?page=2"))
    assert "(showing 3 to 3)" in second and 'rel="prev"' in second
    linked = re.findall(r'<tr class="govuk-table__row" id="alert-(\d+)"', first + second)
    assert sorted(map(int, linked)) == sorted(web_force.rule_alerts.values())
    assert "Page 2 of 2" in text(client.get("/queue?page=99"))
