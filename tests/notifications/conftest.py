"""Real servers on loopback for the channel tests: SMTP (aiosmtpd), HTTP(S) with scripted
answers, and a trustme certificate authority the clients are told to trust."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from notifications.graph import forget_applications

# ---------------------------------------------------------------- certificates


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A test certificate authority; servers' certificates are issued by it."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca) -> ssl.SSLContext:
    """The server side of TLS: a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca) -> ssl.SSLContext:
    """A client context that trusts the test CA (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def ca_bundle(ca, tmp_path, monkeypatch) -> str:
    """The test CA as a file, named by REQUESTS_CA_BUNDLE (requests and so msal trust it)."""
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_msal_apps() -> Iterator[None]:
    """Each test starts with no cached msal application (so no cached token)."""
    forget_applications()
    yield
    forget_applications()


# ---------------------------------------------------------------- SMTP


class Recorder:
    """An aiosmtpd handler that keeps what arrives, or answers DATA with `data_reply`."""

    def __init__(self, data_reply: str = "250 OK", rcpt_reply: str | None = None):
        self.data_reply = data_reply
        self.rcpt_reply = rcpt_reply
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply


class SmtpServer:
    """aiosmtpd on 127.0.0.1 (an ephemeral port) in its own event loop thread; counts the
    connections it accepted."""

    def __init__(self, handler: Recorder, *, implicit_tls: ssl.SSLContext | None = None, **smtp):
        self.handler = handler
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        def factory() -> SMTP:
            self.connections += 1
            return SMTP(handler, hostname="mail.test", loop=self._loop, **smtp)

        async def start():
            return await self._loop.create_server(factory, "127.0.0.1", 0, ssl=implicit_tls)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def messages(self) -> list[Any]:
        return self.handler.envelopes

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Starts SMTP servers: smtp_server(Recorder(), tls_context=..., ...); all stopped after."""
    started: list[SmtpServer] = []

    def start(handler: Recorder | None = None, **options) -> SmtpServer:
        server = SmtpServer(handler or Recorder(), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def password_check(user: str, password: str):
    """An aiosmtpd authenticator accepting one user and password."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return authenticate


# ---------------------------------------------------------------- HTTP(S)


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class HttpServer:
    """A threaded HTTP(S) server on 127.0.0.1. `route(path) -> Answer` decides each answer
    (scripts of answers are lists consumed in order); every request is recorded."""

    def __init__(self, route: Callable[[Request], Answer], tls: ssl.SSLContext | None = None):
        self.requests: list[Request] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                owner.requests.append(request)
                answer = route(request)
                body = answer.body
                if isinstance(body, dict | list):
                    data = json.dumps(body).encode()
                    content_type = "application/json"
                else:
                    data = (body or "").encode() if isinstance(body, str | type(None)) else body
                    content_type = "text/plain"
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def http_server() -> Iterator[Callable[..., HttpServer]]:
    started: list[HttpServer] = []

    def start(route: Callable[[Request], Answer], tls: ssl.SSLContext | None = None):
        server = HttpServer(route, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# ---------------------------------------------------------------- Adaptive Card validator

CARDCHECK = Path(__file__).resolve().parent / "cardcheck"


def _validator_required() -> bool:
    """In CI a missing validator is a failure, not a skip."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get("TT_TEST_POSTGRES") == "require"
    )


@pytest.fixture(scope="session")
def validate_cards() -> Callable[[list[dict[str, Any]]], list[list[str]]]:
    """validate_cards(cards) -> each card's list of problems, from the `adaptivecards`
    parser under node (cardcheck/check.js; version 1.4). Skips without node or the package,
    except in CI where that fails."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed (Debian: apt-get install nodejs npm)"
    elif not (CARDCHECK / "node_modules" / "adaptivecards" / "package.json").is_file():
        problem = (
            "the adaptivecards package is not installed: run "
            "`npm ci --prefix tests/notifications/cardcheck` (make does it with the venv)"
        )
    if problem:
        message = f"Adaptive Card validator unavailable: {problem}"
        if _validator_required():
            pytest.fail(message)
        pytest.skip(message)

    def validate(cards: list[dict[str, Any]]) -> list[list[str]]:
        run = subprocess.run(
            [node, str(CARDCHECK / "check.js")],
            input=json.dumps(cards),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if run.returncode not in (0, 1) or not run.stdout.strip():
            pytest.fail(f"cardcheck did not run (exit {run.returncode}): {run.stderr.strip()}")
        results = json.loads(run.stdout)
        assert [r["index"] for r in results] == list(range(len(cards)))
        return [r["errors"] for r in results]

    return validate
