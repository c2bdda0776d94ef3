"""Microsoft Entra ID: signing in to the pages, and the API's bearer tokens.

Sign-in is OpenID Connect's authorisation-code flow with PKCE, through msal: `/sign-in` keeps
msal's flow (state, nonce, PKCE verifier) in the signed session cookie and sends the browser
to Entra ID; `/auth/callback` has msal check the state and nonce and redeem the code, then
checks the ID token itself (msal no longer does: signature against the authority's published
keys, issuer, audience, expiry) and starts a session for the person it names.

An API call may instead carry `Authorization: Bearer` with an Entra ID access token for this
app, checked the same way (audience: the client id or api://client-id; a user's delegated
token only). Both map to a person the same way (engine.people.accounts: the `email` claim, else
`preferred_username`, against the people feed's email) and take their roles from the token's
`roles` claim, keeping only the tracker's app roles.

Settings come from the app (TT_OIDC_CLIENT_ID, TT_OIDC_CLIENT_SECRET, TT_OIDC_AUTHORITY, and
TT_BASE_URL for the redirect address). Nothing per process is kept but caches of what the
authority publishes (its discovery document and keys), so any gunicorn worker serves any step.
Logs name staff ids only: never an address, a name or a token.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import jwt
import msal
import requests
import requests.adapters
from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from engine.people.accounts import NoPerson, PersonLeft, SeveralPeople, person_for_addresses
from engine.sqltime import local_date
from trauma_tracker.settings import WebSettings
from web import db
from web.auth import ROLES, User, end_session, public, start_session, wants_json

log = logging.getLogger(__name__)

# With msal's own openid and profile: the ID token then carries `email` (where the account
# has one) and `preferred_username`. No refresh token: the tracker calls no API as the user.
SCOPES = ["email"]
EXCLUDED_SCOPES = ["offline_access"]
FLOW_KEY = "entra_flow"
NEXT_KEY = "entra_next"
ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 60  # clock difference tolerated between the authority and this server
HTTP_TIMEOUT = 10
METADATA_SECONDS = 3600  # the discovery document changes rarely; keys rotate within it
SETTING_NAMES = {
    "oidc_client_id": "TT_OIDC_CLIENT_ID",
    "oidc_client_secret": "TT_OIDC_CLIENT_SECRET",
    "oidc_authority": "TT_OIDC_AUTHORITY",
}

bp = Blueprint("entra", __name__)


class TokenRejected(Exception):
    """A token that fails a check; the message says which, never what the token holds."""


class GuestAccount(TokenRejected):
    """A guest in the force's directory: not one of the force's own accounts."""


class IdentityUnavailable(Exception):
    """The authority could not be reached or answered nonsense: a fault, not a refusal."""


class NotConfigured(Exception):
    """Entra ID sign-in is not set up; the message names the missing settings."""


@dataclass(frozen=True)
class EntraConfig:
    client_id: str
    client_secret: str = field(repr=False)
    authority: str  # https://login.microsoftonline.com/<tenant id>

    @classmethod
    def from_settings(cls, web: WebSettings) -> EntraConfig:
        """:raise NotConfigured: a TT_OIDC_* setting is missing."""
        missing = [name for attr, name in SETTING_NAMES.items() if not getattr(web, attr)]
        if missing:
            raise NotConfigured(f"Entra ID sign-in needs {', '.join(missing)}")
        return cls(web.oidc_client_id, web.oidc_client_secret, web.oidc_authority.rstrip("/"))

    @property
    def audiences(self) -> list[str]:
        """What an access token for this app may name as its audience: the client id (as
        version 2.0 tokens do), or the application id URI api://<client id>."""
        return [self.client_id, f"api://{self.client_id}"]


# --- what the authority publishes (caches only) -----------------------------------------------

# msal's cache of discovery responses for the short-lived clients below: it holds no tokens
# and no personal data (msal's documentation of http_cache). One per thread, as each client
# guards it with a lock of its own.
_per_thread = threading.local()
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_key_sets: dict[str, jwt.PyJWKClient] = {}
_lock = threading.Lock()


def _http() -> requests.Session:
    """This thread's session with the authority, for msal and the checks here alike: its
    connections are reused, and it trusts what requests trusts (REQUESTS_CA_BUNDLE too)."""
    if not hasattr(_per_thread, "http"):
        http = requests.Session()
        http.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
        # msal sends no timeout of its own on a session it is given.
        http.request = functools.partial(http.request, timeout=HTTP_TIMEOUT)
        _per_thread.http = http
    return _per_thread.http


def _msal_http_cache() -> dict:
    if not hasattr(_per_thread, "cache"):
        _per_thread.cache = {}
    return _per_thread.cache


def _get_json(url: str) -> dict[str, Any]:
    """One GET to the authority."""
    try:
        response = _http().get(url)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise IdentityUnavailable(f"{url}: {error}") from None
    if not isinstance(document, dict):
        raise IdentityUnavailable(f"{url}: not a JSON object")
    return document


def provider_metadata(config: EntraConfig) -> dict[str, Any]:
    """The authority's OpenID discovery document ({authority}/v2.0/.well-known/...).

    :raise IdentityUnavailable: it can't be fetched, or lacks the issuer or jwks_uri.
    """
    url = f"{config.authority}/v2.0/.well-known/openid-configuration"
    with _lock:
        cached = _metadata.get(url)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    document = _get_json(url)
    for name in ("issuer", "jwks_uri"):
        if not isinstance(document.get(name), str):
            raise IdentityUnavailable(f"{url}: no {name}")
    if "{tenantid}" in document["issuer"]:
        raise IdentityUnavailable(
            f"TT_OIDC_AUTHORITY {config.authority} is multi-tenant: use the force's own "
            "tenant, https://login.microsoftonline.com/<tenant id>"
        )
    with _lock:
        _metadata[url] = (time.monotonic() + METADATA_SECONDS, document)
    return document


class _KeySet(jwt.PyJWKClient):
    """PyJWT's key client, fetching through requests (the same trust store as msal)."""

    def fetch_data(self) -> Any:
        try:
            document = _get_json(self.uri)
        except IdentityUnavailable as error:
            raise jwt.PyJWKClientConnectionError(str(error)) from None
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(document)
        self._last_successful_fetch = time.monotonic()  # as PyJWT's own fetch_data does
        return document


def _key_set(jwks_uri: str) -> jwt.PyJWKClient:
    with _lock:
        if jwks_uri not in _key_sets:
            # An unknown key id refetches the set (keys rotate), at most every 30 seconds.
            _key_sets[jwks_uri] = _KeySet(jwks_uri, cache_keys=True, lifespan=METADATA_SECONDS)
        return _key_sets[jwks_uri]


def check_token(token: str, config: EntraConfig, audiences: list[str]) -> dict[str, Any]:
    """The claims of `token` once its RS256 signature checks against the authority's keys
    and its issuer, audience, expiry and not-before are right.

    :raise TokenRejected: any check fails.
    :raise IdentityUnavailable: the authority's keys can't be fetched.
    """
    metadata = provider_metadata(config)
    try:
        key = _key_set(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as error:
        raise IdentityUnavailable(str(error)) from None
    except jwt.PyJWTError as error:
        raise TokenRejected(f"signing key: {error}") from None
    try:
        return jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=audiences,
            issuer=metadata["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise TokenRejected(str(error)) from None


# --- from claims to a user --------------------------------------------------------------------


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    """The tracker's app roles among the token's `roles`; anything else is ignored."""
    roles = claims.get("roles")
    if not isinstance(roles, list):
        return frozenset()
    return frozenset(r for r in roles if isinstance(r, str) and r in ROLES)


def _addresses(claims: dict[str, Any]) -> list[str]:
    return [
        value
        for value in (claims.get("email"), claims.get("preferred_username"))
        if isinstance(value, str) and value.strip()
    ]


def user_for_claims(claims: dict[str, Any]) -> User:
    """The tracker user a checked token names.

    :raise NoPerson, PersonLeft, SeveralPeople: see engine.people.accounts.
    :raise GuestAccount: a guest account (the optional `acct` claim is 1): only the force's
        own accounts are matched by address, as a guest's address is whatever its inviter
        typed.
    """
    if claims.get("acct") == 1:
        raise GuestAccount("a guest account")
    account = person_for_addresses(db.engine(), _addresses(claims), local_date(db.now()))
    return User(account.staff_id, account.display_name, _roles(claims))


def user_from_bearer(token: str) -> User | None:
    """The user an Entra ID access token for this app names, or None when it is not one
    (bad signature, expired, another audience or issuer, an application's own token, or a
    person the people feed doesn't know). web.auth answers None with 401.

    :raise IdentityUnavailable: the authority's keys can't be fetched (503, not 401).
    """
    try:
        config = EntraConfig.from_settings(db.settings().web)
    except NotConfigured:
        return None
    try:
        claims = check_token(token, config, config.audiences)
        if not isinstance(claims.get("scp"), str) or claims.get("idtyp") == "app":
            # An app-only token (client credentials) speaks for no person.
            raise TokenRejected("not a user's delegated token")
        user = user_for_claims(claims)
    except TokenRejected as error:
        log.info("bearer token refused: %s", error)
        return None
    except NoPerson:
        log.info("bearer token refused: no people record has the account's address")
        return None
    except PersonLeft as error:
        log.info("bearer token refused: %s has left", error.staff_id)
        return None
    except SeveralPeople as error:
        log.warning("bearer token refused: address shared by %s", ", ".join(error.staff_ids))
        return None
    return user


# --- the sign-in routes ------------------------------------------------------------------------


def _config() -> EntraConfig:
    return EntraConfig.from_settings(db.settings().web)


def _client(config: EntraConfig) -> msal.ConfidentialClientApplication:
    """A client for one request: its token cache dies with it, so no worker keeps anyone's
    tokens; the discovery responses come from this thread's http cache.

    :raise IdentityUnavailable: the authority's discovery document can't be fetched.
    """
    try:
        return msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=config.client_secret,
            authority=config.authority,
            # Entra ID's own hosts need no instance discovery; a test authority on loopback
            # must skip it (msal would ask login.microsoftonline.com about it).
            instance_discovery=False,
            exclude_scopes=EXCLUDED_SCOPES,
            token_cache=msal.TokenCache(),
            http_client=_http(),
            http_cache=_msal_http_cache(),
        )
    except (requests.RequestException, ValueError) as error:
        raise IdentityUnavailable(f"{config.authority}: {error}") from None


def _redirect_uri() -> str:
    """Where Entra ID sends the browser back: TT_BASE_URL's /auth/callback (behind a proxy),
    else this request's own host."""
    base = db.settings().base_url
    if base:
        return base.rstrip("/") + url_for("entra.callback")
    return url_for("entra.callback", _external=True)


def _safe_next(target: str | None) -> str:
    """Only a path on this site is followed after sign-in, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _problem(status: int, title: str, text: str, *, again: bool = True, switch: bool = False):
    """A page saying what went wrong; `again` offers to sign in again, `switch` to sign out
    of Microsoft first (someone signed in with another person's or a second account)."""
    page = render_template(
        "entra/problem.html", title=title, text=text, again=again, switch=switch, status=status
    )
    return page, status


@bp.app_errorhandler(IdentityUnavailable)
def _unavailable(error: Exception):
    """An outage at the authority is a 503 wherever it shows (a bearer check on any API
    route too), never a 401 that would tell the caller its token is bad."""
    log.error("Entra ID unavailable: %s", error)
    if wants_json():
        return jsonify(error="sign-in service unavailable: try again shortly"), 503
    return _problem(
        503,
        "Sign-in is not working at the moment",
        "The tracker could not reach Microsoft sign-in. Try again in a few minutes; if it "
        "keeps happening, tell the service desk.",
    )


def _initiate(client: msal.ConfidentialClientApplication) -> dict[str, Any]:
    """msal's flow for one sign-in, the answer coming back as a GET with the code in the
    query. msal recommends form_post instead, but Entra ID's cross-site POST would arrive
    without the session cookie (SameSite=Lax) that holds the flow; a code read from a log is
    no use to anyone without the PKCE verifier and the client secret, and it works once."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="response_mode='form_post' is recommended", category=UserWarning
        )
        return client.initiate_auth_code_flow(
            SCOPES,
            redirect_uri=_redirect_uri(),
            # A shared laptop: choose the account rather than take whoever last signed in.
            prompt="select_account",
        )


@bp.get("/sign-in")
@public("starts Microsoft Entra ID sign-in")
def sign_in():
    """Send the browser to Entra ID, remembering the flow (state, nonce, PKCE) in the session.

    :raise 503: Entra ID is not set up or can't be reached (a page that says so).
    """
    try:
        config = _config()
        client = _client(config)
        flow = _initiate(client)
    except NotConfigured as error:
        log.error("%s", error)
        return _problem(
            503,
            "Microsoft sign-in is not set up",
            f"{error}. Ask the tracker's administrator to set them.",
            again=False,
        )
    except IdentityUnavailable as error:
        return _unavailable(error)
    auth_uri = flow.pop("auth_uri")  # rebuilt by nobody: only the rest is needed later
    session[FLOW_KEY] = flow
    session[NEXT_KEY] = _safe_next(request.args.get("next"))
    return redirect(auth_uri)


@bp.get("/auth/callback")
@public("where Microsoft Entra ID returns after sign-in")
def callback():
    """Finish sign-in: msal checks the state and nonce and redeems the code; the ID token's
    signature, issuer, audience and times are checked; the person is found in the people feed.

    :raise 400: no sign-in in progress, a state or nonce that doesn't match, a refused token.
    :raise 403: the account is not (or no longer) in the people records.
    :raise 503: Entra ID can't be reached.
    """
    flow = session.pop(FLOW_KEY, None)
    next_url = _safe_next(session.pop(NEXT_KEY, None))
    if not isinstance(flow, dict):
        return _problem(
            400,
            "Your sign-in had expired",
            "The sign-in was started too long ago, or in another window. Start again.",
        )
    try:
        config = _config()
        client = _client(config)
        result = client.acquire_token_by_auth_code_flow(flow, request.args.to_dict())
    except NotConfigured as error:
        log.error("%s", error)
        return _problem(503, "Microsoft sign-in is not set up", f"{error}.", again=False)
    except IdentityUnavailable as error:
        return _unavailable(error)
    except requests.RequestException as error:
        return _unavailable(error)
    except (ValueError, RuntimeError) as error:
        # msal: a state that doesn't match this browser's sign-in (ValueError), or an ID
        # token whose nonce isn't ours (RuntimeError): a replay or a forged response.
        log.warning("sign-in refused: %s", type(error).__name__ + " from msal (state or nonce)")
        return _refused()
    if "error" in result:
        code = str(result.get("error"))[:64]
        log.warning("sign-in refused by Entra ID: %s", code)
        if code == "access_denied":
            return _problem(
                403,
                "You did not finish signing in",
                "Microsoft sign-in was cancelled or your account may not use the tracker.",
            )
        return _refused()
    id_token = result.get("id_token")
    if not isinstance(id_token, str):
        log.warning("sign-in refused: no ID token in the token response")
        return _refused()
    try:
        claims = check_token(id_token, config, [config.client_id])
        user = user_for_claims(claims)
    except IdentityUnavailable as error:
        return _unavailable(error)
    except GuestAccount:
        log.info("sign-in refused: a guest account")
        return _not_in_records()
    except TokenRejected as error:
        log.warning("sign-in refused: ID token %s", error)
        return _refused()
    except NoPerson:
        log.info("sign-in refused: no people record has the account's address")
        return _not_in_records()
    except PersonLeft as error:
        log.info("sign-in refused: %s has left", error.staff_id)
        return _not_in_records()
    except SeveralPeople as error:
        log.warning("sign-in refused: address shared by %s", ", ".join(error.staff_ids))
        return _problem(
            403,
            "Your account matches more than one person",
            "More than one person in the tracker's people records has your email address. "
            "Ask the tracker's administrator to correct the people records.",
            again=False,
            switch=True,
        )
    start_session(user)
    log.info("signed in: %s", user.staff_id)
    return redirect(next_url)


def _refused():
    return _problem(
        400,
        "Sign-in could not be completed",
        "The answer from Microsoft sign-in did not match this browser's sign-in, or could "
        "not be checked. Start again.",
    )


def _not_in_records():
    return _problem(
        403,
        "Your account is not in the tracker's people records",
        "You signed in to Microsoft, but the tracker has no current people record with your "
        "email address, so it cannot show you anything. If you work for the force, ask the "
        "tracker's administrator to check the people feed has your work email address.",
        again=False,
        switch=True,
    )


@bp.get("/auth/sign-out")
@public("signs out of the tracker and of Microsoft")
def sign_out():
    """End the tracker session and sign out of Entra ID too (a shared laptop must not leave
    the next person one click from the last one's account), then return to /signed-out."""
    end_session()
    return redirect(sign_out_url())


def sign_out_url() -> str:
    """Entra ID's end-session address, returning to this site's signed-out page; the
    signed-out page itself when Entra ID is not set up or can't be reached."""
    has_page = "auth.signed_out" in current_app.view_functions
    back = url_for("auth.signed_out") if has_page else "/"
    try:
        metadata = provider_metadata(_config())
    except (NotConfigured, IdentityUnavailable):
        return back
    end = metadata.get("end_session_endpoint")
    if not isinstance(end, str):
        return back
    base = db.settings().base_url
    absolute = base.rstrip("/") + back if base else request.host_url.rstrip("/") + back
    return requests.Request("GET", end, params={"post_logout_redirect_uri": absolute}).prepare().url
