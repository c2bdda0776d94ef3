"""Entra ID sign-in end to end through the real msal client, against a local HTTPS identity
endpoint (tests/web/identity_server.py), and the API's bearer-token check against its keys.

The browser's part is played by Flask's test client (the app's own pages) and requests (the
identity endpoint, over TLS with the test CA): GET /sign-in -> authorize -> /auth/callback.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import trustme

from engine.people.accounts import NoPerson, PersonLeft, SeveralPeople, person_for_addresses
from engine.sqltime import local_date
from tests.forcedata import Force, person
from tests.web.identity_server import IdentityServer, new_key
from trauma_tracker.settings import Settings, WebSettings
from web import entra

SECRET_KEY = "entra-tests-secret-key-not-for-use-anywhere-else"
TODAY = local_date(datetime.now(UTC))
LONG_AGO = "2015-01-01"
YESTERDAY = (TODAY - timedelta(days=1)).isoformat()
LAST_MONTH = (TODAY - timedelta(days=30)).isoformat()
NEXT_WEEK = (TODAY + timedelta(days=7)).isoformat()

# Checks of tokens alone, not of storage: run on SQLite only (the people match runs on both).
tokens_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ALEX = {"email": "Alex.Officer@force.example", "name": "Alex O", "roles": []}
WREN = {
    "preferred_username": "wren.wellbeing@force.example",
    "name": "Wren W",
    "roles": ["wellbeing", "auditor", "Directory.Readers", "superuser"],
}


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def keys():
    """RSA keys made once: the published one and the one nobody published."""
    return new_key(), new_key()


@pytest.fixture
def identity(ca, keys, tmp_path, monkeypatch):
    """The identity endpoint, trusted by requests (and so msal) through REQUESTS_CA_BUNDLE."""
    bundle = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with IdentityServer(ca, key=keys[0], rogue_key=keys[1]) as server:
        yield server


@pytest.fixture
def people(database_url):
    """People with work addresses, stored through the real ingest path."""
    force = Force(database_url)
    force.add(
        ("units", {"unit_id": "F", "parent_id": None, "level": "force", "name": "Force"}),
        ("units", {"unit_id": "T1", "parent_id": "F", "level": "team", "name": "Response 1"}),
        person("P100", display_name="Alex Officer", email="alex.officer@force.example"),
        person(
            "P500",
            display_name="Wren Wellbeing",
            email="wren.wellbeing@force.example",
            staff_type="staff",
        ),
        # Left last month: signed in no more.
        person("P900", display_name="Lou Leaver", email="lou@force.example", leave_date=LAST_MONTH),
        # Leaving next week: still here today.
        person("P901", display_name="Nat Notice", email="nat@force.example", leave_date=NEXT_WEEK),
        # One address on two people: a feed error, refused rather than guessed.
        person("P910", display_name="Kim One", email="shared@force.example"),
        person("P911", display_name="Kim Two", email="shared@force.example"),
        # The address moved: P920's old one is P921's now.
        person("P920", display_name="Mo Moved", email="mo.old@force.example"),
        person("P920", display_name="Mo Moved", email="mo@force.example", valid_from=YESTERDAY),
        person(
            "P921", display_name="Mo Newcomer", email="mo.old@force.example", valid_from=YESTERDAY
        ),
        # Joins next week: not yet in force.
        person("P930", display_name="Fay Future", email="fay@force.example", valid_from=NEXT_WEEK),
    )
    yield force
    force.close()


@pytest.fixture
def app(database_url, people, identity):
    from web import create_app

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        web=WebSettings(
            oidc_client_id=identity.client_id,
            oidc_client_secret=identity.client_secret,
            oidc_authority=identity.authority,
        ),
    )
    app = create_app(settings, testing=True)
    yield app
    app.extensions["tt"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def start(client, next_url: str | None = None) -> str:
    """GET /sign-in; returns the authorize address it sends the browser to."""
    response = client.get(
        "/sign-in" + (f"?next={urllib.parse.quote(next_url)}" if next_url else "")
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def authorize(location: str) -> str:
    """The browser at the identity endpoint: returns where it is sent back (path and query)."""
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urllib.parse.urlsplit(answer.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("http", "localhost", "/auth/callback")
    return f"{back.path}?{back.query}"


def sign_in(client, identity, user, next_url=None):
    identity.user = dict(user)
    return client.get(authorize(start(client, next_url)))


def session_user(client) -> dict:
    with client.session_transaction() as session:
        return {k: session.get(k) for k in ("staff_id", "display_name", "roles")}


def page_text(response) -> str:
    return response.get_data(as_text=True)


# --- the sign-in journey -----------------------------------------------------------------------


def test_sign_in_end_to_end_gives_the_person_and_their_app_roles(client, identity):
    location = start(client, next_url="/team")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert location.startswith(identity.authority + "/oauth2/v2.0/authorize?")
    assert query["client_id"] == identity.client_id
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["nonce"] and query["state"]
    assert query["redirect_uri"] == "http://localhost/auth/callback"
    assert {"openid", "profile", "email"} <= set(query["scope"].split())
    assert "offline_access" not in query["scope"].split()
    with client.session_transaction() as session:
        flow = session["entra_flow"]
        assert flow["state"] == query["state"] and "code_verifier" in flow

    identity.user = dict(WREN)
    done = client.get(authorize(location))

    assert done.status_code == 302 and done.headers["Location"] == "/team"
    assert session_user(client) == {
        "staff_id": "P500",
        "display_name": "Wren Wellbeing",  # the people feed's name, not the token's
        "roles": ["auditor", "wellbeing"],  # the tracker's app roles only
    }
    with client.session_transaction() as session:
        assert "entra_flow" not in session  # used once
    token_calls = [p for m, p, _ in identity.requests if m == "POST"]
    assert token_calls == [f"/{identity.tenant}/oauth2/v2.0/token"]
    # The discovery document is cached: once for msal, once for the token check.
    discovery = [p for _, p, _ in identity.requests if p.endswith("openid-configuration")]
    assert len(discovery) <= 2


def test_the_email_claim_matches_whatever_its_case(client, identity):
    done = sign_in(client, identity, ALEX)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert session_user(client) == {"staff_id": "P100", "display_name": "Alex Officer", "roles": []}


def test_signed_in_pages_then_open(client, identity):
    assert client.get("/me").status_code == 302  # to sign-in
    sign_in(client, identity, ALEX)
    me = client.get("/me")
    assert me.status_code == 200
    assert "Alex Officer" in page_text(me)


def test_a_person_not_in_the_people_records_gets_a_page_saying_so(client, identity):
    done = sign_in(client, identity, {"email": "stranger@force.example", "roles": ["admin"]})
    assert done.status_code == 403
    assert "not in the tracker" in page_text(done) and "people records" in page_text(done)
    assert "stranger@force.example" not in page_text(done)
    assert 'href="/auth/sign-out"' in page_text(done)  # for someone on the wrong account
    assert session_user(client)["staff_id"] is None


@pytest.mark.parametrize(
    "user",
    [
        {"email": "lou@force.example"},  # left last month
        {"email": "fay@force.example"},  # joins next week
        {"email": "mo.old@force.example", "preferred_username": "x@elsewhere.example"},
        {},  # no address at all
    ],
    ids=["left", "not-yet-joined", "an-old-address", "no-address"],
)
def test_who_is_not_a_current_person_is_not_signed_in(client, identity, user):
    if user.get("email") == "mo.old@force.example":
        # P920's old address belongs to P921 today: it signs P921 in, not P920.
        assert sign_in(client, identity, user).status_code == 302
        assert session_user(client)["staff_id"] == "P921"
        return
    done = sign_in(client, identity, user)
    assert done.status_code == 403
    assert session_user(client)["staff_id"] is None


def test_an_address_on_two_people_is_refused_not_guessed(client, identity, caplog):
    done = sign_in(client, identity, {"email": "shared@force.example"})
    assert done.status_code == 403
    assert "more than one person" in page_text(done)
    assert "P910, P911" in caplog.text and "shared@force.example" not in caplog.text


def test_someone_leaving_next_week_still_signs_in(client, identity):
    assert sign_in(client, identity, {"email": "nat@force.example"}).status_code == 302
    assert session_user(client)["staff_id"] == "P901"


def test_cancelled_at_microsoft(client, identity):
    identity.deny_next = True
    done = sign_in(client, identity, ALEX)
    assert done.status_code == 403 and "did not finish signing in" in page_text(done)
    assert session_user(client)["staff_id"] is None


# --- refusals: state, nonce, the ID token ----------------------------------------------------


def test_a_callback_with_another_state_is_refused(client, identity):
    identity.user = dict(ALEX)
    back = authorize(start(client))
    forged = back.replace("state=", "state=forged")
    done = client.get(forged)
    assert done.status_code == 400 and "could not be completed" in page_text(done)
    assert session_user(client)["staff_id"] is None
    # The flow was used up: replaying the genuine answer afterwards fails too.
    assert client.get(back).status_code == 400


def test_a_callback_without_a_sign_in_in_progress_is_refused(client, identity):
    identity.user = dict(ALEX)
    back = authorize(start(client))
    other_browser = client.application.test_client()
    done = other_browser.get(back)
    assert done.status_code == 400 and "expired" in page_text(done)
    assert session_user(other_browser)["staff_id"] is None


@tokens_only
@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"nonce": "a-nonce-from-another-sign-in"}, "published"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "published"),
        ({"nbf": int(time.time()) + 3600}, "published"),
        ({"aud": "another-app"}, "published"),
        ({"iss": "https://login.example/another-tenant/v2.0"}, "published"),
        ({}, "rogue"),
        ({"exp": None}, "published"),
    ],
    ids=[
        "wrong-nonce",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "wrong-key",
        "no-expiry",
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(client, identity, changes, key, caplog):
    identity.id_token_changes = changes
    identity.id_token_key = key
    done = sign_in(client, identity, WREN)
    assert done.status_code == 400, page_text(done)[:300]
    assert "could not be completed" in page_text(done)
    assert session_user(client)["staff_id"] is None
    assert "wren.wellbeing" not in caplog.text


def test_a_guest_account_is_not_matched_by_its_address(client, identity):
    identity.id_token_changes = {"acct": 1}  # the optional claim: 0 member, 1 guest
    done = sign_in(client, identity, WREN)
    assert done.status_code == 403 and "people records" in page_text(done)
    assert session_user(client)["staff_id"] is None


def test_unreachable_identity_endpoint_is_a_clear_503(app, identity):
    client = app.test_client()
    identity.__exit__()
    entra._metadata.clear()
    entra._msal_http_cache().clear()
    done = client.get("/sign-in")
    assert done.status_code == 503 and "not working at the moment" in page_text(done)


def test_sign_in_without_the_settings_names_them(database_url, people):
    from web import create_app

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        web=WebSettings(oidc_client_id="abc"),
    )
    app = create_app(settings, testing=True)
    try:
        done = app.test_client().get("/sign-in")
        assert done.status_code == 503
        assert "TT_OIDC_CLIENT_SECRET, TT_OIDC_AUTHORITY" in page_text(done)
    finally:
        app.extensions["tt"].dispose()


def test_sign_out_ends_the_session_and_signs_out_of_microsoft(client, identity):
    sign_in(client, identity, ALEX)
    done = client.get("/auth/sign-out")
    assert done.status_code == 302
    target = urllib.parse.urlsplit(done.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{identity.authority}/oauth2/v2.0/logout"
    )
    back = dict(urllib.parse.parse_qsl(target.query))["post_logout_redirect_uri"]
    assert back.startswith("http://localhost/")
    assert session_user(client)["staff_id"] is None


@tokens_only
def test_sign_in_is_rate_limited(client, identity):
    codes = [client.get("/sign-in").status_code for _ in range(25)]
    assert codes[:20] == [302] * 20
    assert 429 in codes[20:]


# --- bearer tokens -----------------------------------------------------------------------------


def bearer_user(app, token):
    with app.test_request_context("/api/v1/me", headers={"Authorization": f"Bearer {token}"}):
        return entra.user_from_bearer(token)


def test_an_access_token_signed_by_the_authority_names_the_person(app, identity):
    user = bearer_user(app, identity.access_token(WREN))
    assert user is not None
    assert (user.staff_id, user.display_name) == ("P500", "Wren Wellbeing")
    assert user.roles == frozenset({"wellbeing", "auditor"})
    # The application id URI is this app's audience too (v1.0 access tokens).
    also = bearer_user(app, identity.access_token(ALEX, aud=f"api://{identity.client_id}"))
    assert also is not None and also.staff_id == "P100" and also.roles == frozenset()


@tokens_only
@pytest.mark.parametrize(
    "changes",
    [
        {"key": "rogue"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200},
        {"nbf": "IN_TEN_MINUTES"},
        {"aud": "00000003-0000-0000-c000-000000000000"},  # a token for Microsoft Graph
        {"iss": "https://login.microsoftonline.com/another-tenant/v2.0"},
        {"scp": None},  # an application's own token: no person
        {"idtyp": "app"},
        {"acct": 1},  # a guest account
        {"email": "stranger@force.example"},
        {"email": "lou@force.example"},
    ],
    ids=[
        "wrong-signature",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "app-only",
        "app-only-idtyp",
        "guest",
        "unknown-person",
        "left",
    ],
)
def test_a_bad_access_token_names_nobody(app, identity, changes):
    # Times relative to now are made when the test runs, not when the module was collected.
    if changes.get("nbf") == "IN_TEN_MINUTES":
        changes = {**changes, "nbf": int(time.time()) + 600}
    assert bearer_user(app, identity.access_token(ALEX, **changes)) is None


@tokens_only
def test_tokens_that_are_not_tokens_name_nobody(app, identity):
    good = identity.access_token(ALEX)
    header, body, signature = good.split(".")
    tampered = ".".join(
        [header, body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB"), signature]
    )
    for token in ("", "not-a-jwt", "a.b.c", tampered):
        assert bearer_user(app, token) is None
    # An unsigned token ("alg": "none") is never accepted.
    import jwt as pyjwt

    unsigned = pyjwt.encode(
        {
            "iss": identity.issuer,
            "aud": identity.client_id,
            "exp": int(time.time()) + 600,
            "iat": int(time.time()),
            "scp": "x",
            "email": "alex.officer@force.example",
        },
        None,
        algorithm="none",
    )
    assert bearer_user(app, unsigned) is None


def test_the_keys_are_fetched_once_not_per_token(app, identity):
    for _ in range(3):
        assert bearer_user(app, identity.access_token(ALEX)) is not None
    key_fetches = [p for m, p, _ in identity.requests if p.endswith("/keys")]
    assert len(key_fetches) == 1


def test_without_the_settings_bearer_tokens_name_nobody(database_url, people, identity):
    from web import create_app

    settings = Settings(database_url=database_url, secret_key=SECRET_KEY)
    app = create_app(settings, testing=True)
    try:
        assert bearer_user(app, identity.access_token(ALEX)) is None
    finally:
        app.extensions["tt"].dispose()


def api_me(client, token):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_the_api_answers_a_good_token_and_401s_bad_ones(app, client, identity):
    if not any(rule.rule == "/api/v1/me" for rule in app.url_map.iter_rules()):
        pytest.skip("the API (web/api) has not landed yet")
    good = api_me(client, identity.access_token(WREN))
    assert good.status_code == 200
    assert good.get_json()["staff_id"] == "P500"
    assert sorted(good.get_json()["roles"]) == ["auditor", "wellbeing"]
    for changes in (
        {"key": "rogue"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200},
        {"aud": "another-app"},
        {"iss": "https://login.microsoftonline.com/another-tenant/v2.0"},
    ):
        bad = api_me(client, identity.access_token(WREN, **changes))
        assert bad.status_code == 401 and bad.get_json() == {"error": "sign in"}


# --- the people match on its own ---------------------------------------------------------------


def test_person_for_addresses(people):
    engine = people.engine
    assert person_for_addresses(engine, ["ALEX.OFFICER@force.example "], TODAY).staff_id == "P100"
    # The first address may be unknown; the second still matches.
    found = person_for_addresses(
        engine, ["nobody@x.example", "wren.wellbeing@force.example"], TODAY
    )
    assert found.staff_id == "P500"
    # On the day before the move, the old address was still P920's.
    day_before = TODAY - timedelta(days=2)
    assert person_for_addresses(engine, ["mo.old@force.example"], day_before).staff_id == "P920"
    assert person_for_addresses(engine, ["mo.old@force.example"], TODAY).staff_id == "P921"
    with pytest.raises(NoPerson):
        person_for_addresses(engine, [], TODAY)
    with pytest.raises(PersonLeft):
        person_for_addresses(engine, ["lou@force.example"], TODAY)
    with pytest.raises(SeveralPeople) as several:
        person_for_addresses(engine, ["shared@force.example"], TODAY)
    assert several.value.staff_ids == ["P910", "P911"]


def test_an_unreachable_authority_is_a_503_not_a_401(app, client, identity):
    token = identity.access_token(ALEX)
    identity.__exit__()
    entra._metadata.clear()
    entra._key_sets.clear()
    with pytest.raises(entra.IdentityUnavailable):
        bearer_user(app, token)
    if any(rule.rule == "/api/v1/me" for rule in app.url_map.iter_rules()):
        answer = api_me(client, token)
        assert answer.status_code == 503
        assert answer.get_json() == {"error": "sign-in service unavailable: try again shortly"}


def test_behind_a_proxy_the_redirect_address_comes_from_tt_base_url(database_url, people, identity):
    from web import create_app

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        base_url="https://tracker.force.example/",
        web=WebSettings(
            oidc_client_id=identity.client_id,
            oidc_client_secret=identity.client_secret,
            oidc_authority=identity.authority,
        ),
    )
    app = create_app(settings, testing=True)
    try:
        client = app.test_client()
        identity.user = dict(ALEX)
        location = start(client)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert query["redirect_uri"] == "https://tracker.force.example/auth/callback"
        answer = requests.get(location, allow_redirects=False, timeout=10)
        back = urllib.parse.urlsplit(answer.headers["Location"])
        assert back.netloc == "tracker.force.example"
        # The token endpoint insists on the same redirect address: it is msal's flow's.
        done = client.get(f"{back.path}?{back.query}")
        assert done.status_code == 302
        assert session_user(client)["staff_id"] == "P100"
    finally:
        app.extensions["tt"].dispose()


@tokens_only
@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_after_sign_in_only_this_site_is_followed(client, identity, target):
    done = sign_in(client, identity, ALEX, next_url=target)
    assert done.status_code == 302 and done.headers["Location"] == "/"


# --- in a real browser -------------------------------------------------------------------------

SCREENS = Path(os.environ.get("TT_SCREENSHOTS", "/tmp/tt-screens"))


@pytest.fixture
def served(database_url, people, identity):
    """The app served on loopback by werkzeug, signing in at the identity endpoint."""
    from werkzeug.serving import make_server

    from web import create_app

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        web=WebSettings(
            oidc_client_id=identity.client_id,
            oidc_client_secret=identity.client_secret,
            oidc_authority=identity.authority,
        ),
    )
    app = create_app(settings, loopback=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["tt"].dispose()


@pytest.mark.slow
@tokens_only
def test_signing_in_in_a_browser(browser, served, identity):
    """The whole journey in chromium: the Lax session cookie that holds the flow comes back
    with Entra ID's redirect, and the person lands on their record; a stranger gets the
    not-in-records page, which passes axe-core."""
    from axe_playwright_python.sync_playwright import Axe

    SCREENS.mkdir(parents=True, exist_ok=True)
    # The identity endpoint's certificate is from the test CA, which chromium doesn't know.
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    identity.user = dict(WREN)
    page.goto(served + "/me")
    page.get_by_role("button", name="Sign in with your force account").click()
    page.wait_for_url(served + "/me")
    assert "Wren Wellbeing" in page.content()
    page.screenshot(path=str(SCREENS / "entra-signed-in.png"), full_page=True)
    context.close()

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    identity.user = {"email": "stranger@force.example"}
    page.goto(served + "/sign-in")
    page.wait_for_url(re.compile(re.escape(served) + r"/auth/callback\?.*"))
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Your account is not in the tracker's people records"
    )
    page.screenshot(path=str(SCREENS / "entra-not-in-records.png"), full_page=True)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    context.close()
