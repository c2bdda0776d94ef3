"""Who may do what: every persona against every page and API route of issue 11, on SQLite and
PostgreSQL, and a walk of the URL map that fails for a route without a permission decision
or without a row here (as GOV.UK Notify's test_routes_have_permissions_decorators does).

A case is allowed when the answer is not a denial (and never a 500); denied means 403
for a signed-in user, and for nobody signed in a redirect to sign-in (pages) or 401 (API).
Each persona gets a fresh force, and its cases run in the order below (reads, then writes,
then signing out), so what one persona changes can't decide another's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.web.api_fixtures import Caller
from tests.web.conftest import PERSONAS, csrf_token
from web.auth import PERMISSION_ATTRIBUTE

# issue 12's blueprints (their matrices: tests/oversight, tests/web/test_oversight_pages.py)
ISSUE_12_AREAS = ("oversight", "queue", "rules", "overview", "audit", "admin")
SIGNED_IN = frozenset(p for p in PERSONAS if p != "anonymous")
EVERYONE = frozenset(PERSONAS)
# The officer P100's record: themselves, their supervisor in force, wellbeing, the auditor.
SEES_P100 = frozenset({"officer", "supervisor", "wellbeing", "auditor"})
# P401 moved from P400's team to P200's yesterday: the previous supervisor no longer sees them.
SEES_P401 = frozenset({"supervisor", "wellbeing", "auditor"})
SUPERVISORS = frozenset({"supervisor", "other_supervisor"})  # someone in post reports to them
ALERT_LISTS = SUPERVISORS | {"wellbeing"}
# P100's alert went to P200; wellbeing works every alert.
ON_P100_ALERT = frozenset({"supervisor", "wellbeing"})
NOBODY = frozenset()


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    url: str  # {alert} is P100's open alert
    allowed: frozenset[str]
    api: bool = False
    form: dict = field(default_factory=dict)
    json: dict | None = None


CASES = [
    # public: anyone, signed in or not
    Case("health.healthz", "GET", "/healthz", EVERYONE),
    Case("health.readyz", "GET", "/readyz", EVERYONE),
    Case("metrics.metrics", "GET", "/metrics", EVERYONE),  # no personal data (web/metrics.py)
    Case("auth.sign_in_page", "GET", "/sign-in-required", EVERYONE),
    Case("auth.signed_out", "GET", "/signed-out", EVERYONE),
    Case("dev.login", "GET", "/dev/login", EVERYONE),
    Case("static", "GET", "/static/css/app.css", EVERYONE),
    Case("entra.sign_in", "GET", "/sign-in", EVERYONE),
    # pages
    Case("me.home", "GET", "/", SIGNED_IN),
    Case("me.dashboard", "GET", "/me", SIGNED_IN),
    Case("me.opt_out_page", "GET", "/me/opt-out", SIGNED_IN),
    Case("me.opt_in_page", "GET", "/me/opt-in", SIGNED_IN),
    Case("people.person", "GET", "/people/P100", SEES_P100),
    Case("people.person", "POST", "/people/P100", SEES_P100, form={"reason": "audit"}),
    Case("people.person", "GET", "/people/P401", SEES_P401),
    Case("people.person", "POST", "/people/P401", SEES_P401, form={"reason": "audit"}),
    Case("people.person", "GET", "/people/P102", NOBODY),  # opted out
    Case("people.person", "GET", "/people/NOBODY", NOBODY),
    Case("team.team", "GET", "/team", SUPERVISORS),
    Case("alerts.my_alerts", "GET", "/alerts", ALERT_LISTS),
    Case("alerts.alert", "GET", "/alerts/{alert}", ON_P100_ALERT),
    Case("alerts.alert", "GET", "/alerts/999999", ON_P100_ALERT - {"supervisor"}),
    # the API
    Case("api.me", "GET", "/api/v1/me", SIGNED_IN, api=True),
    Case("api.my_exposure", "GET", "/api/v1/me/exposure", SIGNED_IN, api=True),
    Case("api.my_access_log", "GET", "/api/v1/me/access-log", SIGNED_IN, api=True),
    Case("api.openapi", "GET", "/api/v1/openapi.json", SIGNED_IN, api=True),
    Case(
        "api.person_exposure_view",
        "GET",
        "/api/v1/people/P100/exposure?reason=audit",
        SEES_P100,
        api=True,
    ),
    Case(
        "api.person_exposure_view",
        "GET",
        "/api/v1/people/P401/exposure?reason=audit",
        SEES_P401,
        api=True,
    ),
    Case(
        "api.person_exposure_view",
        "GET",
        "/api/v1/people/P102/exposure?reason=audit",
        NOBODY,
        api=True,
    ),
    Case("api.team", "GET", "/api/v1/team", SUPERVISORS, api=True),
    Case("api.alert_list", "GET", "/api/v1/alerts?status=all", ALERT_LISTS, api=True),
    Case("api.alert", "GET", "/api/v1/alerts/{alert}", ON_P100_ALERT, api=True),
    # writes
    Case("alerts.acknowledge_alert", "POST", "/alerts/{alert}/acknowledge", ON_P100_ALERT),
    Case("api.acknowledge", "POST", "/api/v1/alerts/{alert}/ack", ON_P100_ALERT, api=True),
    Case(
        "alerts.resolve_alert",
        "POST",
        "/alerts/{alert}/resolve",
        ON_P100_ALERT,
        form={"outcome": "support_offered"},
    ),
    Case(
        "api.resolve",
        "POST",
        "/api/v1/alerts/{alert}/resolve",
        ON_P100_ALERT,
        api=True,
        json={"outcome": "support_offered"},
    ),
    Case("me.conversation", "POST", "/me/conversation", SIGNED_IN, form={"to": "wellbeing"}),
    Case("dev.token", "POST", "/dev/token", EVERYONE, json={"staff_id": "P100", "roles": []}),
    Case("me.opt_out_page", "POST", "/me/opt-out", SIGNED_IN, form={"confirm": "y"}),
    Case("me.opt_in_page", "POST", "/me/opt-in", SIGNED_IN, form={"confirm": "y"}),
    Case("api.my_opt_out", "POST", "/api/v1/me/opt-out", SIGNED_IN, api=True),
    Case("api.my_opt_in", "POST", "/api/v1/me/opt-in", SIGNED_IN, api=True),
    # an empty picker form: answered (the page again), and nobody is signed in by it
    Case("dev.login", "POST", "/dev/login", EVERYONE),
    # last: these end or replace the session
    Case("entra.callback", "GET", "/auth/callback", EVERYONE),
    Case("auth.sign_out", "POST", "/sign-out", SIGNED_IN),
    Case("entra.sign_out", "GET", "/auth/sign-out", EVERYONE),
]


def _denied(response, persona: str, api: bool) -> bool:
    if persona == "anonymous":
        if api:
            return response.status_code == 401
        location = response.headers.get("Location", "")
        return response.status_code == 302 and "/sign-in-required" in location
    return response.status_code == 403


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_each_persona_may_do_what_the_matrix_says_and_nothing_else(
    persona, client, sign_in_as, web_force
):
    alert = web_force.alerts["P100"]
    api = Caller(client)
    if persona == "anonymous":
        token = csrf_token(client.get("/dev/login").get_data(as_text=True))
    else:
        sign_in_as(client, persona)
        token = csrf_token(client.get("/me/opt-out").get_data(as_text=True))
    wrong = []
    for case in CASES:
        url = case.url.format(alert=alert)
        if case.api or case.endpoint == "dev.token":
            headers = api.headers(persona) if case.api else {}
            response = client.open(url, method=case.method, headers=headers, json=case.json)
        elif case.method == "POST":
            response = client.post(url, data={"csrf_token": token, **case.form})
        else:
            response = client.get(url)
        response.close()
        # 503 is an answer (sign-in not configured in the tests, not ready); 500 is a bug
        assert response.status_code != 500, (case.method, url)
        denied = _denied(response, persona, case.api)
        if not denied and response.status_code in (401, 403):
            denied = True  # a denial of the wrong kind is still recorded as one, then flagged
            wrong.append((case.method, url, f"wrong denial {response.status_code}"))
        if denied == (persona in case.allowed):
            expected = "allowed" if persona in case.allowed else "denied"
            wrong.append((case.method, url, f"expected {expected}, got {response.status_code}"))
    assert wrong == []


def test_every_route_has_a_permission_decision_and_a_row_in_the_matrix(app):
    """A new page or endpoint can't forget its check, nor be left out of the matrix."""
    undecided, unlisted = [], []
    listed = {(c.endpoint, c.method) for c in CASES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ISSUE_12_AREAS:
            continue  # issue 12's: tests/oversight/test_api_permissions.py, test_oversight_pages.py
        view = app.view_functions[rule.endpoint]
        if getattr(view, PERMISSION_ATTRIBUTE, None) is None:
            undecided.append(str(rule))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in listed:
                unlisted.append(f"{method} {rule} ({rule.endpoint})")
    assert undecided == []
    assert unlisted == []
