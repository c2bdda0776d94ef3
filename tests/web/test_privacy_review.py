"""Privacy review: what the leaders' overview, the API and the pages give away.

Disclosure control. A unit with nobody in it today is suppressed (0 < 5), but it protects
nobody: a leader knows a team that was disbanded or not yet staffed is empty, and every figure
of an empty unit is 0. So a small team whose only suppressed partner is an empty unit can be
recovered by subtraction; the attacker of tests/oversight/test_disclosure.py, told which units
are empty, must still recover nothing.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from tests.oversight.test_disclosure import (
    FORCE_UNITS,
    attacker_knowledge,
    build,
    forces,
    in_span,
)
from tests.web.conftest import csrf_token


def recovered_knowing_empty_units(hierarchy, heads) -> list[str]:
    """Suppressed cells with people that the published figures give away, to an attacker who
    also knows which units have nobody in them."""
    members, known = attacker_knowledge(hierarchy, heads)
    known += [{unit_id} for unit_id, count in heads.items() if count == 0]
    rows = [{u: Fraction(1) for u in group} for group in known if group]
    return [
        key
        for key, cell in hierarchy.cells.items()
        if cell.suppressed
        and cell.people > 0
        and in_span(rows, {u: Fraction(1) for u in members[key]})
    ]


def test_an_empty_sibling_is_no_protection_for_a_small_team():
    # T1 (3 people) and T2 (nobody) are both under 5; D1 and T3 are published. T1 is then
    # D1 - T3 - T2 = D1 - T3: every figure of it, for anyone who knows T2 is empty.
    heads = {"T1": 3, "T2": 0, "T3": 12, "T4": 20, "T5": 30, "T6": 25}
    hierarchy = build(FORCE_UNITS, heads)
    assert hierarchy.cells["T1"].suppressed and hierarchy.cells["T2"].suppressed
    assert recovered_knowing_empty_units(hierarchy, heads) == []
    assert hierarchy.cells["T3"].suppressed  # the only real partner T1 has


def given_away_by_the_tree(hierarchy, heads) -> set[str]:
    """Cells recovered even with every cell hidden: the remainders the worst case assumes
    known, beside units known to be empty, give them away whatever is published."""
    everything_hidden = copy.deepcopy(hierarchy)
    for cell in everything_hidden.cells.values():
        cell.suppressed = True
    return set(recovered_knowing_empty_units(everything_hidden, heads))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forces())
def test_no_cell_can_be_recovered_by_someone_who_knows_the_empty_units(force):
    units, heads = force
    hierarchy = build(units, heads)
    recovered = set(recovered_knowing_empty_units(hierarchy, heads))
    assert recovered <= given_away_by_the_tree(hierarchy, heads)


# --- the access log ----------------------------------------------------------------------------


def test_acting_on_an_alert_through_the_api_is_in_the_persons_access_log(client, web_force):
    """Acknowledge and resolve answer with the alert's explanation (the person's figures), a
    view of their data like GET /alerts/{id}: the person sees it in their access log."""
    from tests.web.api_fixtures import Caller

    api = Caller(client)
    alert_id = web_force.alerts["P100"]
    assert api.get("officer", "/api/v1/me/access-log").json == []

    acked = api.post("supervisor", f"/api/v1/alerts/{alert_id}/ack", json={})
    assert acked.status_code == 200
    assert any(c["actual"] is not None for c in acked.json["explanation"])

    log = api.get("officer", "/api/v1/me/access-log").json
    assert [(e["viewer_id"], e["reason"]) for e in log] == [("P200", "alert_review")]

    resolved = api.post(
        "wellbeing", f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "support_offered"}
    )
    assert resolved.status_code == 200
    log = api.get("officer", "/api/v1/me/access-log").json
    assert [(e["viewer_id"], e["reason"]) for e in log] == [
        ("P500", "alert_review"),
        ("P200", "alert_review"),
    ]


def test_a_refused_action_on_an_alert_is_not_logged_as_a_view(client, web_force):
    from tests.web.api_fixtures import Caller

    api = Caller(client)
    alert_id = web_force.alerts["P100"]
    assert (
        api.post("other_supervisor", f"/api/v1/alerts/{alert_id}/ack", json={}).status_code == 403
    )
    assert api.get("officer", "/api/v1/me/access-log").json == []


# --- an auditor's reason -----------------------------------------------------------------------
# Issue 12: auditors see decisions, but the exposure detail behind them only when they record
# an `audit` reason. An auditor who is nobody else to the person (not their supervisor, not
# wellbeing) can't open the record as a "welfare conversation": the person would read a reason
# that is not true.


def test_an_auditor_opens_a_record_through_the_api_only_for_audit(client, web_force):
    from tests.web.api_fixtures import Caller
    from tests.web.test_pages import access_log

    api = Caller(client)
    refused = api.get("auditor", "/api/v1/people/P100/exposure?reason=welfare_conversation")
    assert refused.status_code == 400 and refused.json["error"].startswith("reason:")
    other = api.get("auditor", "/api/v1/people/P100/exposure?reason=other&note=just+looking")
    assert other.status_code == 400
    assert access_log(web_force, "P100") == []

    assert api.get("auditor", "/api/v1/people/P100/exposure?reason=audit").status_code == 200
    assert access_log(web_force, "P100") == [("P600", "audit", None, "person")]
    # Wellbeing and the supervisor keep every reason.
    url = "/api/v1/people/P100/exposure?reason=welfare_conversation"
    assert api.get("wellbeing", url).status_code == 200
    assert api.get("supervisor", url).status_code == 200


def test_an_auditor_opens_a_record_page_only_for_audit(client, sign_in_as, web_force):
    from tests.web.test_pages import access_log, post_form, text_of

    sign_in_as(client, "auditor")
    refused = post_form(client, "/people/P100", {"reason": "welfare_conversation"})
    assert refused.status_code == 200
    assert "As an auditor, choose Audit" in text_of(refused)
    assert "Why are you looking at this record?" in text_of(refused)
    assert access_log(web_force, "P100") == []

    shown = post_form(client, "/people/P100", {"reason": "audit"})
    assert shown.status_code == 200 and "points" in text_of(shown)
    assert access_log(web_force, "P100") == [("P600", "audit", None, "person")]


# --- a reason chosen elsewhere -------------------------------------------------------------------
# GET /api/v1/people/{id}/exposure writes the viewer's reason into the person's access log. With
# the session cookie (SameSite=Lax, so sent on a top-level link from another site) a link could
# choose that reason for a signed-in supervisor; so a session call needs the CSRF token too.


def test_a_session_call_to_open_a_record_needs_the_csrf_token(client, sign_in_as, web_force):
    from tests.web.test_pages import access_log

    sign_in_as(client, "supervisor")
    url = "/api/v1/people/P100/exposure?reason=welfare_conversation"
    from_elsewhere = client.get(url, headers={"Accept": "application/json"})
    assert from_elsewhere.status_code == 400
    assert from_elsewhere.json["error"].startswith("csrf token:")
    assert access_log(web_force, "P100") == []

    token = csrf_token(client.get("/me").get_data(as_text=True))
    own_page = client.get(url, headers={"Accept": "application/json", "X-CSRFToken": token})
    assert own_page.status_code == 200
    assert access_log(web_force, "P100") == [("P200", "welfare_conversation", None, "person")]


# --- the person an alert is about ----------------------------------------------------------------
# A rule may notify the person too (`notify: [self, supervisor]`). They may read it, but closing
# it as "no action needed" would close their supervisor's and wellbeing's alert as well.


def test_the_person_an_alert_is_about_may_read_it_but_not_act_on_it(client, web_force):
    from tests.web.api_fixtures import Caller

    alert_id = web_force.alerts["P100"]  # P100's cluster alert, sent to P200
    with web_force.engine.begin() as conn:
        stored = conn.execute(
            sa.text("SELECT recipients FROM alerts WHERE id = :i"), {"i": alert_id}
        ).scalar_one()
        recipients = json.loads(stored)
        assert [r["to"] for r in recipients] == ["P200"]
        recipients.append({**recipients[0], "to": "P100", "role": "self"})
        conn.execute(
            sa.text("UPDATE alerts SET recipients = :r WHERE id = :i"),
            {"r": json.dumps(recipients), "i": alert_id},
        )
    api = Caller(client)

    assert api.get("officer", f"/api/v1/alerts/{alert_id}").status_code == 200
    ack = api.post("officer", f"/api/v1/alerts/{alert_id}/ack")
    resolve = api.post(
        "officer", f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "no_action_needed"}
    )
    assert (ack.status_code, resolve.status_code) == (403, 403)
    assert api.get("officer", f"/api/v1/alerts/{alert_id}").json["status"] == "open"
    # Their supervisor, a recipient too, still may.
    assert api.post("supervisor", f"/api/v1/alerts/{alert_id}/ack").status_code == 200
