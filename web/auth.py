"""Who is asking, and the one place that says whether they may.

A user comes from the session cookie (after sign-in), or from `Authorization: Bearer TOKEN`:
a token from `/dev/token` (only with TT_DEV_LOGIN), else an Entra ID access token checked by
web.entra. A request that carries an Authorization header is judged by it alone, never by the
cookie beside it, so a bearer call needs no CSRF token and a cookie can't ride along.

Every route carries exactly one permission decision, recorded on the view function:
`signed_in`, `allowed(check)` or `public(reason)`. tests/web walk the URL map to prove it.
Nobody signed in: a page redirects to sign-in, an /api/ call gets 401. Signed in but not
allowed: 403, the same answer whether or not the thing exists.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.people import directory as people
from engine.sqltime import local_date
from web import db

ROLES = ("wellbeing", "steering", "leader", "auditor", "admin")
DEV_TOKEN_SALT = "trauma-tracker dev token"
DEV_TOKEN_MAX_AGE = 8 * 3600  # a working shift
SESSION_MAX_SECONDS = 10 * 3600  # a long shift; the cookie itself lapses after an idle hour
SESSION_KEYS = ("staff_id", "display_name", "roles", "nonce", "since")
PERMISSION_ATTRIBUTE = "tt_permission"


@dataclass(frozen=True)
class User:
    staff_id: str
    display_name: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


# --- who is asking ---------------------------------------------------------------------------


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def uses_bearer() -> bool:
    """True when the request is judged by its Authorization header (no CSRF check then)."""
    return request.headers.get("Authorization") is not None


def _user_from_session() -> User | None:
    staff_id = session.get("staff_id")
    if not staff_id:
        return None
    since = session.get("since")
    if not isinstance(since, int | float) or time.time() - since > SESSION_MAX_SECONDS:
        session.clear()  # a shift has passed since sign-in: sign in again
        return None
    return User(staff_id, session.get("display_name") or staff_id, frozenset(session["roles"]))


def _user_from_bearer(token: str) -> User | None:
    if not token:
        return None
    if db.settings().web.dev_login:
        claims = read_dev_token(token)
        if claims is not None:
            person = people.person_on(db.reads(), claims["staff_id"], _today())
            if person is None:
                return None  # the person has since gone from the people feed
            return User(claims["staff_id"], person.display_name, frozenset(claims["roles"]))
    entra = current_app.extensions.get("tt_entra")
    return entra.user_from_bearer(token) if entra is not None else None


def current_user() -> User | None:
    """The signed-in user of this request, or None (worked out once per request)."""
    if "tt_user" not in g:
        token = _bearer_token()
        g.tt_user = _user_from_bearer(token) if token is not None else _user_from_session()
    return g.tt_user


def start_session(user: User) -> None:
    """Sign `user` in: a fresh session (nothing from before sign-in is kept) with a new nonce,
    so a cookie captured earlier no longer matches."""
    session.clear()
    session["staff_id"] = user.staff_id
    session["display_name"] = user.display_name
    session["roles"] = sorted(user.roles)
    session["nonce"] = secrets.token_urlsafe(16)
    session["since"] = int(time.time())
    session.permanent = True
    g.tt_user = user


def end_session() -> None:
    session.clear()
    g.tt_user = None


def _today():
    return local_date(db.now())


# --- dev tokens ------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=DEV_TOKEN_SALT)


def make_dev_token(staff_id: str, roles: list[str]) -> str:
    return _serializer().dumps({"staff_id": staff_id, "roles": sorted(set(roles))})


def read_dev_token(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired dev token, else None."""
    try:
        claims = _serializer().loads(token, max_age=DEV_TOKEN_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("staff_id"), str):
        return None
    return {"staff_id": claims["staff_id"], "roles": [r for r in claims["roles"] if r in ROLES]}


# --- permission decisions --------------------------------------------------------------------


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/dev/token"


def _unauthenticated():
    if wants_json():
        return jsonify(error="sign in"), 401
    return redirect(url_for("auth.sign_in_page", next=request.full_path.rstrip("?")))


def _forbidden():
    if wants_json():
        return jsonify(error="not allowed"), 403
    abort(403)


def _mark(view: Callable, decision: str) -> Callable:
    existing = getattr(view, PERMISSION_ATTRIBUTE, None)
    if existing is not None:
        raise TypeError(f"{view.__name__} already has a permission decision ({existing})")
    setattr(view, PERMISSION_ATTRIBUTE, decision)
    return view


def signed_in(view: Callable) -> Callable:
    """Anyone signed in may."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_user() is None:
            return _unauthenticated()
        return view(*args, **kwargs)

    return _mark(wrapper, "signed_in")


def allowed(check: Callable[..., bool]) -> Callable[[Callable], Callable]:
    """Only a signed-in user for whom `check(user, **view_args)` is true may."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                return _unauthenticated()
            if not check(user, **kwargs):
                return _forbidden()
            return view(*args, **kwargs)

        return _mark(wrapper, f"allowed({getattr(check, '__name__', check)})")

    return decorate


def public(reason: str) -> Callable[[Callable], Callable]:
    """Anyone may, signed in or not; `reason` says why (health checks, sign-in, static)."""

    def decorate(view: Callable) -> Callable:
        return _mark(view, f"public({reason})")

    return decorate


def has_role(*roles: str) -> Callable[..., bool]:
    """A check for `allowed`: the user holds one of `roles`."""

    def check(user: User, **_: Any) -> bool:
        return any(user.has(role) for role in roles)

    check.__name__ = "has_role_" + "_or_".join(roles)
    return check


# --- sign-in pages and the dev login ---------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.get("/sign-in-required")
@public("the page that says how to sign in")
def sign_in_page():
    """Where a signed-out page visit lands: the Entra ID button, or the persona picker."""
    next_url = _safe_next(request.args.get("next"))
    return render_template(
        "auth/sign_in.html",
        next_url=next_url,
        dev_login=db.settings().web.dev_login,
        entra="entra" in current_app.blueprints and bool(db.settings().web.oidc_client_id),
    )


@bp.post("/sign-out")
@signed_in
def sign_out():
    """End the session; with Entra ID sign-in, sign out of Microsoft too (a shared laptop)."""
    end_session()
    entra = current_app.extensions.get("tt_entra")
    if entra is not None and db.settings().web.oidc_client_id:
        return redirect(entra.sign_out_url())
    return redirect(url_for("auth.signed_out"))


@bp.get("/signed-out")
@public("the page after signing out")
def signed_out():
    return render_template("auth/signed_out.html")


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never another host) is followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("me.dashboard")
    return target


dev = Blueprint("dev", __name__, url_prefix="/dev")


@dev.route("/login", methods=["GET", "POST"])
@public("the demo's persona picker (TT_DEV_LOGIN only)")
def login():
    """The persona picker: choose a real person from the people feed and the roles to hold."""
    from wtforms.fields.choices import SelectChoice

    from web.forms import DevLoginForm

    day = _today()
    choices = people.picker_people(db.engine(), day)
    form = DevLoginForm()
    form.staff_id.choices = [
        SelectChoice(p["staff_id"], f"{p['display_name']} ({p['staff_id']})") for p in choices
    ]
    if form.validate_on_submit():
        staff_id = form.chosen_staff_id()
        name = people.display_name(db.engine(), staff_id, day)
        if name is None:
            form.other_staff_id.errors.append(f"No person with staff id {staff_id} in the feed")
        else:
            start_session(User(staff_id, name, frozenset(form.roles.data)))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/dev_login.html", form=form, people=choices)


@dev.post("/token")
@public("issues demo bearer tokens (TT_DEV_LOGIN only)")
def token():
    """`{"staff_id", "roles": [...]}` -> `{"access_token"}`: a signed token for 8 hours."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="body: expected a JSON object with staff_id and roles"), 400
    staff_id = body.get("staff_id")
    roles = body.get("roles", [])
    if not isinstance(staff_id, str) or not staff_id:
        return jsonify(error="staff_id: required, a staff id from the people feed"), 400
    if not isinstance(roles, list) or any(r not in ROLES for r in roles):
        return jsonify(error=f"roles: a list of any of {', '.join(ROLES)}"), 400
    if people.display_name(db.engine(), staff_id, _today()) is None:
        return jsonify(error=f"staff_id: no person {staff_id} in the people feed"), 400
    return jsonify(
        access_token=make_dev_token(staff_id, roles),
        token_type="Bearer",
        expires_in=DEV_TOKEN_MAX_AGE,
    )
