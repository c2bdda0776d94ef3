"""The pages through Flask's test client, as the people who use them (both databases)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.web.conftest import csrf_token
from web.auth import PERMISSION_ATTRIBUTE


def html(response) -> str:
    return response.get_data(as_text=True)


def text_of(response) -> str:
    """The page's visible text, roughly: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html(response)).split())


def post_form(client, path: str, data: dict | None = None, *, page: str | None = None):
    """Submit a form as a browser would: with the CSRF token from the page showing it."""
    form_page = client.get(page or path)
    assert form_page.status_code == 200, form_page.status_code
    return client.post(path, data={"csrf_token": csrf_token(html(form_page)), **(data or {})})


def access_log(web_force, staff_id: str) -> list[tuple[str, str, str | None, str]]:
    with web_force.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT viewer_id, reason, note, what FROM access_log WHERE staff_id = :s "
                "ORDER BY id"
            ),
            {"s": staff_id},
        )
        return [tuple(row) for row in rows]


def alert_status(web_force, alert_id: int) -> tuple[str, str | None, str | None]:
    with web_force.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, outcome, note FROM alerts WHERE id = :i"), {"i": alert_id}
        ).one()
        return tuple(row)


# --- every route decides who may --------------------------------------------------------------


def test_every_route_carries_exactly_one_permission_decision(app):
    missing = [
        f"{rule.rule} ({rule.endpoint})"
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], PERMISSION_ATTRIBUTE, None) is None
    ]
    assert missing == []
    assert len(list(app.url_map.iter_rules())) > 10


def test_a_second_permission_decision_on_one_view_is_refused():
    from web.auth import public, signed_in

    with pytest.raises(TypeError, match="already has a permission decision"):
        signed_in(public("twice")(lambda: None))


# --- health ------------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_when_all_is_well(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.get_json()["checks"]
    assert checks == {"database": "ok", "criteria": "ok", "ruleset": "ok", "scheduler": "ok"}


def test_readyz_is_503_while_the_schedulers_dispatch_has_not_succeeded_lately(web_force):
    """A scheduler that has stopped sending (or died) makes the service not ready."""
    from datetime import UTC, datetime, timedelta

    from engine.oversight.service_runs import record_start, record_success
    from web import create_app

    app = create_app(web_force.settings(), testing=True)
    with app.app_context():
        from web import db

        long_ago = datetime.now(UTC) - timedelta(hours=2)
        for name, kind in (("scheduler", "scheduler"), ("dispatch", "job")):
            record_start(db.engine(), name, kind, long_ago, "host-1")
            record_success(db.engine(), name, kind, long_ago, "host-1")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    problem = response.get_json()["checks"]["scheduler"]
    assert "no active scheduler since" in problem
    assert "dispatch has not succeeded since" in problem
    app.extensions["tt"].dispose()


def test_readyz_is_503_and_says_the_ruleset_is_missing(web_force, tmp_path):
    from web import create_app

    empty = tmp_path / "no-rules"
    empty.mkdir()
    app = create_app(
        web_force.settings().__class__(**{**web_force.settings().__dict__, "rules_dir": empty}),
        testing=True,
    )
    with app.app_context():
        # A stored good pack would be used instead of broken files: make sure there is none.
        from web import db

        with db.engine().begin() as conn:
            conn.execute(sa.text("DELETE FROM ruleset_versions"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok"
    assert checks["criteria"].startswith("invalid:") and "criteria.yaml" in checks["criteria"]
    assert checks["ruleset"].startswith("no valid ruleset:")
    assert response.get_json()["status"] == "not ready"
    app.extensions["tt"].dispose()


def test_readyz_is_503_when_the_database_does_not_answer(web_force, tmp_path):
    from trauma_tracker.settings import Settings
    from web import create_app

    settings = web_force.settings()
    gone = Settings(**{**settings.__dict__, "database_url": f"sqlite:///{tmp_path}/no/such.db"})
    response = create_app(gone, testing=True).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("not answering")
    assert response.get_json()["checks"]["ruleset"].startswith("not checked")
    assert response.get_json()["checks"]["scheduler"].startswith("not checked")


# --- signing in --------------------------------------------------------------------------------


def test_a_signed_out_visit_goes_to_sign_in_and_comes_back_after(client, web_force):
    response = client.get("/team?sort=name")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in-required?next=/team")
    page = client.get("/dev/login?next=/team")
    signed = client.post(
        "/dev/login?next=/team",
        data={"csrf_token": csrf_token(html(page)), "staff_id": "P200"},
    )
    assert signed.headers["Location"] == "/team"


def test_sign_in_never_sends_you_to_another_site(client):
    page = client.get("/dev/login")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.delete_cookie("tt_session")
        page = client.get("/dev/login")
        response = client.post(
            f"/dev/login?next={target}",
            data={"csrf_token": csrf_token(html(page)), "staff_id": "P100"},
        )
        assert response.headers["Location"] == "/me", target


def test_the_persona_picker_lists_real_people_and_refuses_unknown_ones(client):
    page = client.get("/dev/login")
    assert "Sam Sergeant (P200)" in html(page) and "Alex Officer (P100)" in html(page)
    response = client.post(
        "/dev/login", data={"csrf_token": csrf_token(html(page)), "other_staff_id": "NOBODY"}
    )
    assert response.status_code == 200
    assert "No person with staff id NOBODY" in html(response)
    assert 'class="govuk-error-summary"' in html(response)
    response = client.post("/dev/login", data={"csrf_token": csrf_token(html(page))})
    assert "Choose a person, or type a staff id" in html(response)


def test_session_cookie_is_httponly_and_lax_and_secure_outside_loopback(web_force):
    from web import create_app

    for loopback, secure in ((True, False), (False, True)):
        app = create_app(web_force.settings(), loopback=loopback)
        client = app.test_client()
        page = client.get("/dev/login")
        response = client.post(
            "/dev/login", data={"csrf_token": csrf_token(html(page)), "staff_id": "P100"}
        )
        cookie = next(v for v in response.headers.getlist("Set-Cookie") if "tt_session" in v)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        app.extensions["tt"].dispose()


def test_signing_in_starts_a_new_session_and_signing_out_ends_it(client, sign_in_as):
    client.get("/dev/login")
    with client.session_transaction() as session:
        session["left_over"] = "from before sign-in"
    sign_in_as(client, "officer")
    with client.session_transaction() as session:
        assert "left_over" not in session and session["staff_id"] == "P100"
    me = client.get("/me")
    response = client.post("/sign-out", data={"csrf_token": csrf_token(html(me))})
    assert response.headers["Location"] == "/signed-out"
    assert client.get("/me").status_code == 302


def test_without_dev_login_there_is_no_picker_and_no_token(web_force):
    from web import create_app

    app = create_app(web_force.settings(dev_login=False), testing=True)
    client = app.test_client()
    assert client.get("/dev/login").status_code == 404
    assert client.post("/dev/token", json={"staff_id": "P100", "roles": []}).status_code == 404
    app.extensions["tt"].dispose()


def test_no_secret_key_is_refused_outside_the_demo(web_force):
    from trauma_tracker.settings import Settings, WebSettings
    from web import ConfigurationError, create_app

    settings = Settings(database_url=web_force.url, rules_dir=web_force.rules_dir)
    with pytest.raises(ConfigurationError, match="TT_SECRET_KEY is required"):
        create_app(settings)
    demo = Settings(**{**settings.__dict__, "web": WebSettings(dev_login=True)})
    create_app(demo).extensions["tt"].dispose()


# --- dev tokens --------------------------------------------------------------------------------


def test_a_dev_token_signs_in_a_bearer_call_and_a_forged_one_does_not(client, web_force):
    token = client.post("/dev/token", json={"staff_id": "P100", "roles": []}).get_json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 8 * 3600
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/me", headers=headers).status_code == 200
    forged = {"Authorization": f"Bearer {token['access_token'][:-2]}xx"}
    assert client.get("/me", headers=forged).status_code == 302
    # A bearer call is judged by its header alone, never by a cookie beside it.
    page = client.get("/dev/login")
    client.post("/dev/login", data={"csrf_token": csrf_token(html(page)), "staff_id": "P200"})
    assert client.get("/team").status_code == 200
    assert client.get("/team", headers=forged).status_code == 302
    assert client.get("/team", headers=headers).status_code == 403  # the officer's token


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ({"roles": []}, "staff_id"),
        ({"staff_id": "P100", "roles": ["root"]}, "roles"),
        ({"staff_id": "P100", "roles": "admin"}, "roles"),
        ({"staff_id": "NOBODY", "roles": []}, "staff_id"),
    ],
)
def test_a_bad_token_request_is_400_naming_the_field(client, body, field):
    if isinstance(body, str):
        response = client.post("/dev/token", data=body, content_type="application/json")
    else:
        response = client.post("/dev/token", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"{field}:")


def test_token_requests_and_sign_ins_are_rate_limited(client):
    answers = [
        client.post("/dev/token", json={"staff_id": "P100", "roles": []}).status_code
        for _ in range(21)
    ]
    assert answers[:20] == [200] * 20 and answers[20] == 429
    assert client.post("/dev/token", json={"staff_id": "P100"}).get_json() == {
        "error": "too many attempts: wait a minute and try again"
    }
    codes = []
    for _ in range(21):  # each sign-in starts a new session, so each needs the page's token
        token = csrf_token(html(client.get("/dev/login")))
        response = client.post("/dev/login", data={"csrf_token": token, "staff_id": "P100"})
        codes.append(response.status_code)
    assert codes[:20] == [302] * 20 and codes[20] == 429
    assert client.get("/dev/login").status_code == 200  # showing the page is not an attempt


# --- security headers, CSRF --------------------------------------------------------------------


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script_or_style(
    client, sign_in_as, web_force
):
    sign_in_as(client, "supervisor")
    for path in ("/me", "/team", "/alerts", f"/alerts/{web_force.alerts['P100']}", "/people/P100"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"
        page = html(response)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert "<style" not in page and not re.search(r"\sstyle=", page), path
        assert "GDS Transport" not in page and "govuk-crest" not in page


def test_a_form_without_its_csrf_token_changes_nothing(client, sign_in_as, web_force):
    sign_in_as(client, "officer")
    response = client.post("/me/opt-out")
    assert response.status_code == 400
    assert "The form had expired or was not sent from this site" in html(response)
    assert web_force.force.count("opt_outs", "P100") == 0
    sign_in_as(client, "supervisor")
    alert_id = web_force.alerts["P100"]
    assert client.post(f"/alerts/{alert_id}/acknowledge").status_code == 400
    assert alert_status(web_force, alert_id)[0] == "open"


def test_a_session_write_to_the_api_needs_the_csrf_header_and_a_bearer_call_does_not(
    client, sign_in_as, web_force
):
    alert_id = web_force.alerts["P101"]
    if "api" not in {bp.split(".")[0] for bp in client.application.blueprints}:
        pytest.skip("the JSON API (web/api.py) is not in this build")
    sign_in_as(client, "supervisor")
    refused = client.post(f"/api/v1/alerts/{alert_id}/ack", json={})
    assert refused.status_code == 400 and "csrf" in refused.get_json()["error"]
    token = csrf_token(html(client.get("/me")))
    accepted = client.post(
        f"/api/v1/alerts/{alert_id}/ack", json={}, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 200, accepted.get_json()
    # A bearer call carries no cookie authority, so it needs no CSRF token.
    bearer = client.post("/dev/token", json={"staff_id": "P200", "roles": []}).get_json()
    other = web_force.alerts["P100"]
    by_token = client.post(
        f"/api/v1/alerts/{other}/ack",
        json={},
        headers={"Authorization": f"Bearer {bearer['access_token']}"},
    )
    assert by_token.status_code == 200, by_token.get_json()
    assert alert_status(web_force, other)[0] == "acknowledged"


# --- Me ----------------------------------------------------------------------------------------


def test_an_officer_sees_their_figures_exposures_indicators_and_support(client, sign_in_as):
    sign_in_as(client, "officer")
    response = client.get("/me")
    text = text_of(response)
    assert "never used for discipline, performance or promotion" in text
    assert "Last 30 days 6 points from 3 exposures" in text
    assert "Last 12 months 11 points from 6 exposures" in text
    assert "Last 5 years 14 points from 8 exposures" in text
    assert text.count("Suicide") >= 3 and "Death of a child" in text and "First on scene" in text
    assert "INC-" not in html(response)  # no incident references
    assert "Cancelled rest days, last 90 days 2" in text
    assert "Sickness days, last 12 months 4" in text
    for signpost in ("Police Care UK", "Oscar Kilo", "Occupational Health", "TRiM"):
        assert signpost in text
    assert 'href="https://welfare.force.example/"' in html(response)
    assert "Nobody else has opened your record" in text
    assert "<svg" in html(response) and "tt-chart__tier2" in html(response)


def test_a_person_not_in_the_people_feed_sees_no_figures(client):
    page = client.get("/dev/login")
    client.post("/dev/login", data={"csrf_token": csrf_token(html(page)), "other_staff_id": "P100"})
    with client.session_transaction() as session:
        session["staff_id"] = "X999"  # signed in, then gone from the feed
    response = client.get("/me")
    assert response.status_code == 200
    assert "not in the people feed" in text_of(response)


def test_the_officer_sees_who_looked_at_their_record_and_why(client, sign_in_as, web_force):
    sign_in_as(client, "supervisor")
    post_form(client, "/people/P100", {"reason": "other", "note": "Checking in after a hard month"})
    sign_in_as(client, "officer")
    text = text_of(client.get("/me"))
    assert "Sam Sergeant" in text and "Other: Checking in after a hard month" in text


def test_opting_out_asks_first_then_deletes_and_opting_in_rebuilds(client, sign_in_as, web_force):
    sign_in_as(client, "officer")
    confirm = client.get("/me/opt-out")
    assert "Are you sure you want to opt out?" in text_of(confirm)
    assert web_force.force.count("opt_outs", "P100") == 0  # asking is not doing
    done = post_form(client, "/me/opt-out")
    assert done.headers["Location"] == "/me"
    assert web_force.force.count("exposures", "P100") == 0
    assert web_force.force.count("alerts", "P100") == 0
    text = text_of(client.get("/me"))
    assert "You have opted out" in text and "points" not in text
    post_form(client, "/me/opt-in")
    assert web_force.force.count("exposures", "P100") == 8
    assert "Last 30 days 6 points" in text_of(client.get("/me"))
    with web_force.engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT action, actor, channel FROM opt_out_events WHERE staff_id = 'P100'")
        ).all()
    assert [tuple(e) for e in events] == [("opt_out", "P100", "web"), ("opt_in", "P100", "web")]


@pytest.mark.parametrize(("to", "recipient"), [("supervisor", "P200"), ("wellbeing", None)])
def test_asking_for_a_conversation_queues_a_message_without_detail(
    client, sign_in_as, web_force, to, recipient
):
    sign_in_as(client, "officer")
    response = post_form(client, "/me/conversation", {"to": to}, page="/me")
    assert response.status_code == 302
    page = text_of(client.get("/me"))
    assert "Your request has gone to" in page and "Your recent requests" in page
    with web_force.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT recipient, payload FROM outbox WHERE kind = 'conversation_request'")
        ).all()
    assert rows
    for row in rows:
        assert recipient is None or row.recipient == recipient
        body = json.loads(row.payload)
        assert (
            body["link"] == "/people/P100" and body["title"] == "asked for a welfare conversation"
        )
        assert set(body) == {"kind", "staff_id", "name", "title", "severity", "link"}


def test_asking_for_a_conversation_without_choosing_says_so(client, sign_in_as, web_force):
    sign_in_as(client, "officer")
    response = post_form(client, "/me/conversation", {}, page="/me")
    assert "Choose who you would like to talk to" in text_of(
        client.get(response.headers["Location"])
    )
    with web_force.engine.connect() as conn:
        queued = conn.execute(
            sa.text("SELECT COUNT(*) FROM outbox WHERE kind = 'conversation_request'")
        ).scalar_one()
    assert queued == 0


# --- Team --------------------------------------------------------------------------------------


def test_a_supervisor_sees_their_team_without_the_opted_out_person(client, sign_in_as):
    sign_in_as(client, "supervisor")
    response = client.get("/team")
    text = text_of(response)
    for name in ("Alex Officer", "Bea Constable", "Dana Mover"):
        assert name in text
    assert "Cal Optedout" not in text and "P102" not in text
    assert "1 person has opted out and is not shown" in text
    assert "Handover: 1 person" in text and "Suicide (tier 2)" in text


@pytest.mark.parametrize(
    ("sort", "order", "first"),
    [("name", "ascending", "Alex"), ("name", "descending", "Dana"), ("alerts", None, "Alex")],
)
def test_the_team_sorts_on_the_server(client, sign_in_as, sort, order, first):
    sign_in_as(client, "supervisor")
    query = f"/team?sort={sort}" + (f"&order={order}" if order else "")
    page = html(client.get(query))
    body = page[page.index("<tbody") :]
    names = re.findall(r'href="/people/P\d+">([^<]+)</a>', body)
    assert names[0].startswith(first), names
    assert f'aria-sort="{order or "descending"}"' in page


def test_unknown_sort_keys_fall_back_rather_than_fail(client, sign_in_as):
    sign_in_as(client, "supervisor")
    assert client.get("/team?sort=__class__&order=sideways").status_code == 200


@pytest.mark.parametrize("persona", ["officer", "wellbeing", "leader", "admin", "auditor"])
def test_people_who_supervise_nobody_have_no_team_page(client, sign_in_as, persona):
    sign_in_as(client, persona)
    assert client.get("/team").status_code == 403
    assert "My team" not in html(client.get("/me"))


def test_the_previous_supervisor_no_longer_sees_who_moved(client, sign_in_as):
    sign_in_as(client, "previous_supervisor")
    assert client.get("/team").status_code == 403  # P401 was their only person
    assert client.get("/people/P401").status_code == 403


# --- Person ------------------------------------------------------------------------------------


def test_a_record_is_shown_only_after_a_reason_and_each_view_is_logged(
    client, sign_in_as, web_force
):
    sign_in_as(client, "supervisor")
    ask = client.get("/people/P100")
    assert "Why are you looking at this record?" in text_of(ask)
    assert "points" not in text_of(ask) and access_log(web_force, "P100") == []
    missing = post_form(client, "/people/P100", {})
    assert "Choose why you are looking at this record" in text_of(missing)
    assert html(missing).count('href="#reason-0"') == 1  # the summary links to the field
    no_note = post_form(client, "/people/P100", {"reason": "other"})
    assert "Say why you are looking at this record" in text_of(no_note)
    assert 'aria-describedby="note-hint note-error"' in html(no_note)
    assert access_log(web_force, "P100") == []
    shown = post_form(client, "/people/P100", {"reason": "welfare_conversation"})
    assert "Alex Officer's record" in text_of(shown) and "6 points" in text_of(shown)
    post_form(client, "/people/P100", {"reason": "other", "note": "  A chat  "})
    assert access_log(web_force, "P100") == [
        ("P200", "welfare_conversation", None, "person"),
        ("P200", "other", "A chat", "person"),
    ]


@pytest.mark.parametrize(
    ("persona", "staff_id", "allowed"),
    [
        ("supervisor", "P100", True),
        ("supervisor", "P401", True),  # moved to them yesterday
        ("supervisor", "P102", False),  # opted out
        ("supervisor", "P301", False),
        ("supervisor", "NOBODY", False),  # the same answer as for someone not theirs
        ("other_supervisor", "P100", False),
        ("previous_supervisor", "P401", False),
        ("wellbeing", "P100", True),
        ("auditor", "P100", True),
        ("leader", "P100", False),
        ("admin", "P100", False),
        ("officer", "P101", False),
        ("officer", "P100", "own"),
    ],
)
def test_who_may_open_a_record(client, sign_in_as, persona, staff_id, allowed):
    sign_in_as(client, persona)
    response = client.get(f"/people/{staff_id}")
    if allowed == "own":  # one's own record is the Me page, with nothing logged
        assert response.headers["Location"] == "/me"
        return
    assert response.status_code == (200 if allowed else 403)


# --- Alerts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "waiting"),
    [("supervisor", "3 alerts waiting for you"), ("wellbeing", "3 alerts"), ("officer", None)],
)
def test_the_me_page_says_how_many_alerts_wait(client, sign_in_as, persona, waiting):
    sign_in_as(client, persona)
    text = text_of(client.get("/me"))
    if waiting:
        assert waiting in text
    else:
        assert "waiting for you" not in text


def test_my_alerts_lists_the_alerts_sent_to_me_and_marks_overdue_ones(client, sign_in_as, app):
    sign_in_as(client, "supervisor")
    text = text_of(client.get("/alerts"))
    assert "Alex Officer" in text and "Bea Constable" in text and "Overdue" not in text
    from web import db

    with app.app_context():
        start = db.now()
    app.config["TT_CLOCK"] = lambda: start + timedelta(hours=73)
    assert "Overdue" in text_of(client.get("/alerts"))


def test_an_alert_says_why_it_fired_and_who_it_went_to(client, sign_in_as, web_force):
    sign_in_as(client, "supervisor")
    response = client.get(f"/alerts/{web_force.alerts['P100']}")
    text = text_of(response)
    assert "Tier-2-or-higher exposures in 30 days 3, at or above 3" in text
    assert "Sam Sergeant by Microsoft Teams and email" in text
    assert ("P200", "alert_review", None, "alert") in access_log(web_force, "P100")


def test_acknowledge_then_resolve_with_an_outcome(client, sign_in_as, web_force):
    sign_in_as(client, "supervisor")
    alert_id = web_force.alerts["P100"]
    page = f"/alerts/{alert_id}"
    post_form(client, f"/alerts/{alert_id}/acknowledge", page=page)
    assert alert_status(web_force, alert_id)[0] == "acknowledged"
    again = post_form(client, f"/alerts/{alert_id}/acknowledge", page=page)
    assert "only an open alert can be acknowledged" in text_of(
        client.get(again.headers["Location"])
    )
    missing = post_form(client, f"/alerts/{alert_id}/resolve", {"note": "x"}, page=page)
    assert missing.status_code == 200
    assert "Choose the outcome of the conversation" in text_of(missing)
    assert alert_status(web_force, alert_id)[0] == "acknowledged"
    post_form(
        client, f"/alerts/{alert_id}/resolve", {"outcome": "referred", "note": " TRiM "}, page=page
    )
    assert alert_status(web_force, alert_id) == ("resolved", "referred", "TRiM")
    text = text_of(client.get(page))
    assert "Resolved by Sam Sergeant" in text and "Record the outcome" not in text


def test_wellbeing_may_act_on_an_alert_not_sent_to_them(client, sign_in_as, web_force):
    sign_in_as(client, "wellbeing")
    alert_id = web_force.alerts["P100"]  # the cluster alert goes to the supervisor only
    post_form(client, f"/alerts/{alert_id}/acknowledge", page=f"/alerts/{alert_id}")
    assert alert_status(web_force, alert_id)[0] == "acknowledged"


@pytest.mark.parametrize(
    "persona", ["officer", "other_supervisor", "previous_supervisor", "leader", "auditor", "admin"]
)
def test_others_may_neither_see_nor_act_on_an_alert(client, sign_in_as, web_force, persona):
    alert_id = web_force.alerts["P100"]
    sign_in_as(client, persona)
    assert client.get(f"/alerts/{alert_id}").status_code == 403
    assert client.get("/alerts/999999").status_code == 403  # the same as one that exists
    token = csrf_token(html(client.get("/me")))
    response = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token})
    assert response.status_code == 403
    assert alert_status(web_force, alert_id)[0] == "open"


def test_a_missing_alert_is_404_for_wellbeing(client, sign_in_as):
    sign_in_as(client, "wellbeing")
    assert client.get("/alerts/999999").status_code == 404


def test_a_session_ends_a_shift_after_sign_in_however_busy(client, sign_in_as):
    sign_in_as(client, "officer")
    assert client.get("/me").status_code == 200
    with client.session_transaction() as session:
        session["since"] -= 10 * 3600 + 1
    assert client.get("/me").status_code == 302


def test_the_session_cookie_lapses_after_an_idle_hour(client, sign_in_as):
    sign_in_as(client, "officer")
    response = client.get("/me")
    cookie = next(v for v in response.headers.getlist("Set-Cookie") if "tt_session" in v)
    expires = re.search(r"Expires=([^;]+)", cookie).group(1)
    from email.utils import parsedate_to_datetime

    left = parsedate_to_datetime(expires) - datetime.now(UTC)
    assert timedelta(minutes=59) <= left <= timedelta(minutes=61)
