"""`trauma-tracker serve [--host H] [--port P]`: the web app under gunicorn, several workers.

Registered on `main` by `register` (one line at the bottom of cli.py). The persona picker
(TT_DEV_LOGIN=1) is refused unless the server listens on loopback only, and TT_SECRET_KEY is
required otherwise: the session cookies are signed with it, and every worker must share it.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from trauma_tracker.cli_options import fail
from trauma_tracker.settings import Settings

if TYPE_CHECKING:  # cli.py imports this module at its end, so import it lazily
    from trauma_tracker.cli import Context

DEFAULT_WORKERS = 3
# The request line without its query string: a URL carries at most a staff id in its path.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(settings: Settings, host: str) -> Settings:
    """The settings to serve with, or a UsageError saying why they can't be.

    The dev login only on loopback; without TT_SECRET_KEY (allowed only then), one random
    key is made here, before the workers start, so they all accept each other's cookies.
    """
    loopback = is_loopback(host)
    if settings.web.dev_login and not loopback:
        raise click.UsageError(
            f"TT_DEV_LOGIN=1 lets anyone sign in as anyone, so it is only allowed when the "
            f"server listens on loopback (127.0.0.1 or ::1), not on {host}. Unset TT_DEV_LOGIN "
            "and set up Entra ID sign-in (TT_OIDC_*), or serve on --host 127.0.0.1."
        )
    if settings.secret_key is None:
        if not settings.web.dev_login:
            raise click.UsageError(
                "TT_SECRET_KEY is required: it signs the session cookies. Set it (or "
                "TT_SECRET_KEY_FILE) to a long random value, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        settings = replace(settings, secret_key=secrets.token_urlsafe(48))
    return settings


def web_server(host: str, port: int, workers: int, make_app: Callable[[], Any]):
    """gunicorn as `serve` runs it (sync workers, the access log on standard output), with
    the WSGI app that `make_app()` builds in each worker (no database connection crosses a
    fork). bench/web.py serves its fixed-clock app through this too, so it measures what a
    force runs."""
    from gunicorn.app.base import BaseApplication

    class WebServer(BaseApplication):
        def load_config(self):
            options = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers,
                "accesslog": "-",
                "access_log_format": ACCESS_LOG_FORMAT,
                "proc_name": "trauma-tracker-web",
                "graceful_timeout": 30,
                # One socket path per user would clash between two servers (tests, a demo
                # beside a service); nothing here uses gunicorn's runtime control.
                "control_socket_disable": True,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return make_app()

    return WebServer()


def _app_of(settings: Settings, host: str) -> Callable[[], Any]:
    def make_app():
        from web import create_app

        return create_app(settings, loopback=is_loopback(host))

    return make_app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=DEFAULT_WORKERS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes.",
)
@click.pass_obj
def serve(obj: Context, host: str, port: int, workers: int) -> None:
    """Serve the web app (default http://127.0.0.1:5000)."""
    try:
        settings = check_serving(obj.settings, host)
    except click.UsageError as error:
        fail(error.message)
    obj.current_engine()  # the schema is current, or exit 2 saying what to do
    web_server(host, port, workers, _app_of(settings, host)).run()


def register(main: click.Group) -> None:
    main.add_command(serve)
