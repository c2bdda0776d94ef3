"""The Flask web app: `create_app(settings)` builds it; one blueprint per area.

The app keeps no per-process state beyond the rate limiter's counters: sessions are signed
cookies, the database holds the rest, so several gunicorn workers serve it alike.
"""

from __future__ import annotations

import importlib
import importlib.util
from datetime import timedelta

from flask import Flask, jsonify, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError, CSRFProtect

from models.db import make_engine
from trauma_tracker.settings import Settings
from web import auth, db
from web.pages import filters

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SIGN_IN_LIMIT = "20 per minute"
# A shared force laptop: an hour untouched ends the session (the cookie's lifetime, renewed by
# each request); web.auth ends any session a shift after sign-in.
SESSION_IDLE = timedelta(hours=1)

# Scripts, styles, fonts and images come from this site only: no inline script or style.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


class ConfigurationError(Exception):
    """The settings can't make a safe app (e.g. no secret key outside the demo)."""


def create_app(settings: Settings, *, testing: bool = False, loopback: bool = False) -> Flask:
    """The app for `settings`. `loopback`: served on 127.0.0.1/::1 only, so plain HTTP is
    expected and session cookies are not marked Secure.

    :raise ConfigurationError: no TT_SECRET_KEY and not the dev login.
    """
    app = Flask(__name__)
    secret = settings.secret_key
    if secret is None:
        if not settings.web.dev_login:
            raise ConfigurationError(
                "TT_SECRET_KEY is required: it signs the session cookies (set it, or "
                "TT_SECRET_KEY_FILE, to a long random value)"
            )
        import secrets as _secrets

        # The demo only: sessions end when the process does (and each worker would differ,
        # which is why the server runs the demo with one worker or a given key).
        secret = _secrets.token_urlsafe(32)
    app.config.update(
        SECRET_KEY=secret,
        TESTING=testing,
        SESSION_COOKIE_NAME="tt_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not (loopback or testing),
        PERMANENT_SESSION_LIFETIME=SESSION_IDLE,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in _csrf below: bearer calls are exempt
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a form left open over a break
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["tt"] = make_engine(settings.database_url)
    app.extensions["tt_settings"] = settings
    app.teardown_appcontext(db.close_reads)

    csrf = CSRFProtect(app)
    Talisman(
        app,
        force_https=False,  # TLS ends at the force's proxy; the cookie flags still apply
        strict_transport_security=not (loopback or testing),
        session_cookie_secure=not (loopback or testing),
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy="same-origin",
        x_content_type_options=True,
    )
    # A moving window: no burst of twice the limit across a minute's boundary.
    limiter = Limiter(
        get_remote_address, app=app, storage_uri="memory://", strategy="moving-window"
    )

    @app.before_request
    def _csrf():
        # A session-authenticated write needs the form's token (or X-CSRFToken); a bearer call
        # carries no cookie authority, and /dev/token issues tokens to scripts.
        # (No endpoint: the route does not exist, and the answer is a 404, not a CSRF error.)
        exempt = auth.uses_bearer() or request.endpoint in (None, "dev.token")
        # An API write with nobody signed in gets its 401 (CONTRACT section 5), not a 400.
        exempt = exempt or (request.path.startswith("/api/") and auth.current_user() is None)
        if request.method in UNSAFE_METHODS and not exempt:
            csrf.protect()

    _register_blueprints(app, settings, limiter)
    filters.register(app)
    _register_errors(app)
    return app


def _register_blueprints(app: Flask, settings: Settings, limiter: Limiter) -> None:
    from web.pages import admin, alerts, audit, health, me, overview, people, queue, rules, team

    app.register_blueprint(auth.bp)
    for area in (health, me, team, people, alerts, queue, rules, overview, audit, admin):
        app.register_blueprint(area.bp)
    app.register_blueprint(importlib.import_module("web.metrics").bp)  # GET /metrics
    if settings.web.dev_login:
        app.register_blueprint(auth.dev)
        _limit(app, limiter, "dev.login", methods=["POST"])
        _limit(app, limiter, "dev.token")
    if importlib.util.find_spec("web.entra") is not None:
        entra = importlib.import_module("web.entra")
        app.extensions["tt_entra"] = entra
        app.register_blueprint(entra.bp)
        for endpoint in ("entra.sign_in", "entra.callback"):
            if endpoint in app.view_functions:
                _limit(app, limiter, endpoint)
    if importlib.util.find_spec("web.api") is not None:
        api = importlib.import_module("web.api")
        register = getattr(api, "register", None)
        if register is not None:
            register(app)
        else:
            app.register_blueprint(api.bp)
        importlib.import_module("web.api_oversight").register(app)  # issue 12's routes
    # Flask's own static route: files anyone may fetch (the sign-in page needs its CSS).
    auth.public("static files")(app.view_functions["static"])


def _limit(
    app: Flask, limiter: Limiter, endpoint: str, limit: str = SIGN_IN_LIMIT, **options
) -> None:
    """Rate limit one view (sign-in attempts, token issuing), per client address."""
    app.view_functions[endpoint] = limiter.limit(limit, **options)(app.view_functions[endpoint])


def _register_errors(app: Flask) -> None:
    messages = {
        400: "The request could not be understood",
        403: "You do not have permission to see this",
        404: "Page not found",
        405: "That action is not available here",
        413: "What was sent is too large",
        429: "Too many attempts: wait a minute and try again",
        500: "Sorry, something went wrong",
    }

    def handle(error):
        code = getattr(error, "code", 500) or 500
        if isinstance(error, CSRFError):
            text = "the form had expired or was not sent from this site: go back and try again"
            if auth.wants_json():
                return jsonify(error=f"csrf token: {error.description}"), 400
            return render_template("error.html", code=400, title=text[:1].upper() + text[1:]), 400
        if auth.wants_json():
            return jsonify(error=messages.get(code, "error").lower()), code
        return render_template("error.html", code=code, title=messages.get(code, "Error")), code

    for code in messages:
        app.register_error_handler(code, handle)
    app.register_error_handler(CSRFError, handle)
