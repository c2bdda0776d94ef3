"""Local stand-ins for a force's mail server and Teams: for the demo, the end-to-end test and
bench/e2e.py. Both listen on loopback only and keep what arrives (in memory, and as files in
a folder when given one, where the demo's admin can read them).

The mail sink needs aiosmtpd (a development dependency: `pip install -e '.[dev]'`).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    message_id: str
    subject: str
    text: str
    received: float  # time.time() when it arrived


class MailSink:
    """An SMTP server on loopback (aiosmtpd) that accepts every message, after `delay`
    seconds each (a slow server, for tests); `receiving` counts messages begun."""

    def __init__(
        self,
        folder: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
    ):
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.delay = delay
        self.receiving = 0
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self.host, self.port = host, port or free_port(host)
        self._controller = Controller(self, hostname=host, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.receiving += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = "\n".join(
            part.get_content() for part in message.walk() if part.get_content_type() == "text/plain"
        )
        mail = Mail(
            to=tuple(envelope.rcpt_tos),
            message_id=str(message["Message-ID"]),
            subject=str(message["Subject"]),
            text=text,
            received=time.time(),
        )
        with self._lock:
            self.mails.append(mail)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                (self.folder / f"{stamp}.eml").write_bytes(envelope.content)
        return "250 OK"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Post:
    path: str
    body: Any
    received: float


class TeamsSink:
    """An HTTP server on loopback standing in for a Teams Workflows webhook: answers 202 and
    keeps each posted card."""

    def __init__(self, folder: Path | None = None, host: str = "127.0.0.1", port: int = 0):
        self.folder = folder
        self.posts: list[Post] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                sink._keep(Post(self.path, body, time.time()))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # the sink is quiet
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/workflows/demo"

    def _keep(self, post: Post) -> None:
        with self._lock:
            self.posts.append(post)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                (self.folder / f"{stamp}.json").write_text(json.dumps(post.body, indent=2))

    def start(self) -> TeamsSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
