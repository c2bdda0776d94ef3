"""The JSON API (CONTRACT section 5) on SQLite and PostgreSQL: shapes, reasons and the access
log, the team view, alerts explained and acted on, opting out and in, 400/401/403/404/409."""

from __future__ import annotations

import re

import pytest

from engine.people.own_record import person_exposure
from tests.web.api_fixtures import Caller
from tests.web.conftest import csrf_token

EXPOSURE_KEYS = {"staff_id", "opted_out", "as_of", "windows", "exposures"}
EXPOSURE_ITEM_KEYS = {"ref", "feed", "category", "tier", "role", "points", "at"}
ALERT_KEYS = {"alert_id", "staff_id", "rule_id", "severity", "status", "opened_at", "recipients"}


@pytest.fixture
def api(client):
    return Caller(client)


def test_me_says_who_i_am(api):
    assert api.get("officer", "/api/v1/me").json == {
        "staff_id": "P100",
        "display_name": "Alex Officer",
        "roles": [],
        "opted_out": False,
        "is_supervisor": False,
    }
    me = api.get("wellbeing", "/api/v1/me").json
    assert (me["roles"], me["is_supervisor"]) == (["wellbeing"], False)
    assert api.get("supervisor", "/api/v1/me").json["is_supervisor"] is True


def test_my_exposure_is_the_exposure_json_shape(api, web_force):
    body = api.get("officer", "/api/v1/me/exposure").json
    assert set(body) >= EXPOSURE_KEYS and body["opted_out"] is False
    assert set(body["windows"]) == {"30d", "90d", "365d", "5y"}
    assert body["windows"]["30d"] == {"points": 6.0, "exposures": 3}
    assert len(body["exposures"]) == 8 and set(body["exposures"][0]) >= EXPOSURE_ITEM_KEYS
    ats = [e["at"] for e in body["exposures"]]
    assert ats == sorted(ats, reverse=True)
    stored = person_exposure(web_force.engine, "P100", web_force.now, history_days=1826)
    assert [e["ref"] for e in body["exposures"]] == [e["ref"] for e in stored["exposures"]]


def test_another_persons_exposure_needs_a_reason_and_the_person_sees_who_looked(api):
    url = "/api/v1/people/P100/exposure"
    missing = api.get("supervisor", url)
    assert missing.status_code == 400 and missing.json["error"].startswith("reason:")
    wrong = api.get("supervisor", url + "?reason=curiosity")
    assert wrong.status_code == 400 and wrong.json["error"].startswith("reason:")
    bare_other = api.get("supervisor", url + "?reason=other")
    assert bare_other.status_code == 400 and bare_other.json["error"].startswith("note:")
    assert api.get("officer", "/api/v1/me/access-log").json == []  # refused views: no entry

    seen = api.get("supervisor", url + "?reason=welfare_conversation")
    assert seen.status_code == 200 and seen.json["windows"]["30d"]["exposures"] == 3
    assert api.get("wellbeing", url + "?reason=other&note=TRiM%20check").status_code == 200
    assert api.get("auditor", url + "?reason=audit").status_code == 200
    log = api.get("officer", "/api/v1/me/access-log").json
    assert [(e["viewer_id"], e["viewer_name"], e["reason"], e["note"]) for e in log] == [
        ("P600", "Ari Auditor", "audit", None),
        ("P500", "Wren Wellbeing", "other", "TRiM check"),
        ("P200", "Sam Sergeant", "welfare_conversation", None),
    ]
    assert all(e["at"].endswith("Z") for e in log)
    # the person's own record through this route: allowed, and nothing logged
    assert api.get("officer", url + "?reason=other&note=me").status_code == 200
    assert len(api.get("officer", "/api/v1/me/access-log").json) == 3


DENIED_RECORDS = [
    ("other_supervisor", "P100"),  # someone else's team
    ("previous_supervisor", "P401"),  # moved to another team yesterday
    ("officer", "P101"),  # a colleague
    ("leader", "P100"),
    ("admin", "P100"),
    ("supervisor", "P102"),  # opted out: only a count, never a record
    ("wellbeing", "P102"),
    ("supervisor", "NOBODY"),  # no such person: the same answer
    ("wellbeing", "NOBODY"),
]


def test_who_may_not_see_a_record_gets_the_same_403(api):
    answers = {
        (persona, staff_id): api.get(persona, f"/api/v1/people/{staff_id}/exposure?reason=audit")
        for persona, staff_id in DENIED_RECORDS
    }
    assert {key: (r.status_code, r.json) for key, r in answers.items()} == {
        key: (403, {"error": "not allowed"}) for key in DENIED_RECORDS
    }
    assert api.get("officer", "/api/v1/me/access-log").json == []  # refused: nothing logged


def test_the_team_is_whom_i_supervise_today_with_opted_out_people_only_counted(api):
    team = api.get("supervisor", "/api/v1/team").json
    assert team["opted_out_count"] == 1
    assert [p["staff_id"] for p in team["people"]] == ["P100", "P101", "P401"]
    assert "P102" not in repr(team) and "Cal Optedout" not in repr(team)
    alex = team["people"][0]
    assert set(alex) >= {"staff_id", "display_name", "windows", "open_alerts", "serious_7d"}
    assert alex["open_alerts"] == 2 and alex["windows"]["30d"]["exposures"] == 3
    assert [e["category"] for e in alex["serious_7d"]] == ["suicide"]
    assert [p["staff_id"] for p in api.get("other_supervisor", "/api/v1/team").json["people"]] == [
        "P301"
    ]
    # the inspector above the sergeant sees the whole chain
    inspector = api.get_as("P210", (), "/api/v1/team").json
    assert [p["staff_id"] for p in inspector["people"]] == ["P100", "P101", "P401", "P200"]
    for persona in ("previous_supervisor", "officer", "wellbeing", "leader"):
        assert api.get(persona, "/api/v1/team").status_code == 403


def test_alert_lists_wellbeing_all_supervisors_theirs(api, web_force):
    everything = api.get("wellbeing", "/api/v1/alerts?status=all").json
    assert {a["staff_id"] for a in everything} >= {"P100", "P101"}
    assert all(set(a) >= ALERT_KEYS for a in everything)
    mine = api.get("supervisor", "/api/v1/alerts").json
    assert mine and all("P200" in a["recipients"] for a in mine)
    assert all(a["status"] == "open" for a in mine)
    assert api.get("supervisor", "/api/v1/alerts?status=resolved").json == []
    bad = api.get("supervisor", "/api/v1/alerts?status=closed")
    assert bad.status_code == 400 and bad.json["error"].startswith("status:")
    assert api.get("other_supervisor", "/api/v1/alerts").json == []  # none sent to P300
    assert api.get("officer", "/api/v1/alerts").status_code == 403


def test_one_alert_explained_and_its_view_logged_as_an_alert_review(api, web_force):
    alert_id = web_force.alerts["P100"]
    body = api.get("supervisor", f"/api/v1/alerts/{alert_id}").json
    assert set(body) >= ALERT_KEYS | {"explanation", "history", "title"}
    assert body["explanation"] and all(
        set(c) >= {"field", "operator", "threshold", "actual", "result", "words"}
        for c in body["explanation"]
    )
    assert [h["action"] for h in body["history"]] == ["opened"]
    log = api.get("officer", "/api/v1/me/access-log").json
    assert [(e["viewer_id"], e["reason"]) for e in log] == [("P200", "alert_review")]
    denied = api.get("other_supervisor", f"/api/v1/alerts/{alert_id}")
    missing = api.get("other_supervisor", "/api/v1/alerts/999999")
    assert (denied.status_code, denied.json) == (missing.status_code, missing.json)
    assert denied.status_code == 403
    assert api.get("wellbeing", "/api/v1/alerts/999999").status_code == 404
    assert api.get("officer", f"/api/v1/alerts/{alert_id}").status_code == 403


def test_acknowledge_and_resolve_by_a_recipient_with_outcome_and_note(api, web_force):
    alert_id = web_force.alerts["P100"]
    base = f"/api/v1/alerts/{alert_id}"
    assert api.post("other_supervisor", base + "/ack").status_code == 403
    assert api.post("officer", base + "/resolve", json={"outcome": "declined"}).status_code == 403
    no_outcome = api.post("supervisor", base + "/resolve", json={"note": "spoke"})
    assert no_outcome.status_code == 400 and no_outcome.json["error"].startswith("outcome:")
    extra = api.post("supervisor", base + "/ack", json={"note": "seen", "mood": "x"})
    assert extra.status_code == 400 and extra.json["error"].startswith("mood:")

    acked = api.post("supervisor", base + "/ack", json={"note": "seen it"})
    assert acked.status_code == 200 and acked.json["status"] == "acknowledged"
    again = api.post("supervisor", base + "/ack")
    assert again.status_code == 409 and "only an open alert" in again.json["error"]
    done = api.post(
        "supervisor", base + "/resolve", json={"outcome": "support_offered", "note": "talked"}
    )
    assert done.status_code == 200
    assert (done.json["status"], done.json["outcome"], done.json["note"]) == (
        "resolved",
        "support_offered",
        "talked",
    )
    assert [h["action"] for h in done.json["history"]] == ["opened", "acknowledged", "resolved"]
    assert api.post("wellbeing", base + "/resolve", json={"outcome": "referred"}).status_code == 409
    assert api.post("wellbeing", "/api/v1/alerts/999999/ack").status_code == 404


def test_session_writes_need_the_csrf_token(client, sign_in_as, web_force):
    sign_in_as(client, "supervisor")
    alert_id = web_force.alerts["P101"]
    refused = client.post(f"/api/v1/alerts/{alert_id}/ack", json={})
    assert refused.status_code == 400 and "csrf" in refused.get_json()["error"]
    token = csrf_token(client.get(f"/alerts/{alert_id}").get_data(as_text=True))
    done = client.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers={"X-CSRFToken": token})
    assert done.status_code == 200 and done.get_json()["acknowledged_by"] == "P200"
    assert client.get("/api/v1/me").get_json()["staff_id"] == "P200"  # reads need no token


def test_opting_out_and_in_through_the_api(api):
    out = api.post("officer", "/api/v1/me/opt-out")
    assert (out.status_code, out.json) == (200, {"opted_out": True})
    assert api.get("officer", "/api/v1/me/exposure").json == {"staff_id": "P100", "opted_out": True}
    team = api.get("supervisor", "/api/v1/team").json
    assert team["opted_out_count"] == 2 and "P100" not in repr(team["people"])
    assert api.get("supervisor", "/api/v1/people/P100/exposure?reason=audit").status_code == 403
    assert api.post("officer", "/api/v1/me/opt-out").json == {"opted_out": True}  # no change
    back = api.post("officer", "/api/v1/me/opt-in")
    assert (back.status_code, back.json) == (200, {"opted_out": False})
    assert api.get("officer", "/api/v1/me/exposure").json["windows"]["30d"]["exposures"] == 3
    assert api.get("officer", "/api/v1/me").json["opted_out"] is False


def test_without_a_user_every_route_is_401(client, web_force):
    alert_id = web_force.alerts["P100"]
    for method, url in [
        ("get", "/api/v1/me"),
        ("get", "/api/v1/me/exposure"),
        ("get", "/api/v1/people/P100/exposure?reason=audit"),
        ("get", f"/api/v1/alerts/{alert_id}"),
        ("post", f"/api/v1/alerts/{alert_id}/ack"),
        ("get", "/api/v1/openapi.json"),
    ]:
        response = getattr(client, method)(url, headers={"Authorization": "Bearer not-a-token"})
        assert (response.status_code, response.get_json()) == (401, {"error": "sign in"}), url


def test_the_openapi_document_is_generated_from_the_routes(api, app):
    doc = api.get("officer", "/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")

    def path(rule) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(rule))

    mine = {
        path(rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
    }
    served = {path(rule) for rule in app.url_map.iter_rules()}
    # every route of this API is in the document (issue 12's share it), and nothing else is
    assert mine <= set(doc["paths"]) <= served
    assert len(mine) == 11
    resolve = doc["paths"]["/api/v1/alerts/{alert_id}/resolve"]["post"]
    assert set(resolve["responses"]) >= {"200", "400", "401", "403", "404", "409"}
    query = doc["paths"]["/api/v1/people/{staff_id}/exposure"]["get"]["parameters"]
    assert {p["name"] for p in query} >= {"staff_id", "reason", "note"}
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "session"}


def test_text_no_database_can_store_is_refused_not_a_500(api, web_force):
    alert_id = web_force.alerts["P100"]
    response = api.get("wellbeing", "/api/v1/people/P1%0000/exposure?reason=audit")
    assert response.status_code == 403
    response = api.get("wellbeing", "/api/v1/people/P100/exposure?reason=other&note=a%00b")
    assert response.status_code == 400 and response.json["error"].startswith("note:")
    response = api.post("wellbeing", f"/api/v1/alerts/{alert_id}/ack", json={"note": "a\x00"})
    assert response.status_code == 400 and response.json["error"].startswith("note:")
    assert api.get("wellbeing", f"/api/v1/alerts/{2**31}").status_code == 404
    assert api.get("supervisor", f"/api/v1/alerts/{2**63}").status_code == 403
