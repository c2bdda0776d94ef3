"""Real servers on loopback for the dispatcher tests (and the crash tests' child processes):
an aiosmtpd SMTP server that keeps every message, and a threaded HTTP server standing in for
the Teams Workflows webhook, answering 202 unless told otherwise."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass(frozen=True)
class Mail:
    """One message as the SMTP server received it."""

    to: list[str]
    message_id: str
    subject: str
    text: str  # every text part, plain and HTML, decoded
    plain: str  # the plain-text part


class MailRecorder:
    """An aiosmtpd handler: keeps what arrives, or answers DATA with `reply(count)` when set
    (e.g. a 451 for the first message)."""

    def __init__(self, reply: Callable[[int], str] | None = None):
        self.reply = reply
        self.mails: list[Mail] = []
        self.seen = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.seen += 1
            answer = self.reply(self.seen) if self.reply else "250 OK"
            if not answer.startswith("250"):
                return answer
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            parts = {
                part.get_content_subtype(): part.get_content()
                for part in message.walk()
                if part.get_content_maintype() == "text"
            }
            self.mails.append(
                Mail(
                    to=list(envelope.rcpt_tos),
                    message_id=str(message["Message-ID"]),
                    subject=str(message["Subject"]),
                    text="\n".join(parts.values()),
                    plain=parts.get("plain", ""),
                )
            )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1, an ephemeral port, in its own event-loop thread."""

    def __init__(self, handler: MailRecorder | None = None):
        self.handler = handler or MailRecorder()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        self._sessions: list[SMTP] = []

        def factory() -> SMTP:
            session = SMTP(self.handler, hostname="mail.test", loop=self._loop)
            self._sessions.append(session)
            return session

        async def start():
            return await self._loop.create_server(factory, "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"smtp://127.0.0.1:{self.port}"

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails

    def stop(self) -> None:
        async def close():
            self._server.close()
            for session in self._sessions:  # connections a client left open
                if session.transport is not None:
                    session.transport.close()
            current = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not current]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class Webhook:
    """A Workflows webhook stand-in. `answer(count) -> (status, headers)` decides each reply
    (default 202); the JSON bodies of accepted posts are kept."""

    def __init__(self, answer: Callable[[int], tuple[int, dict[str, str]]] | None = None):
        self.cards: list[dict[str, Any]] = []
        self.posts = 0
        self.answer = answer
        owner = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    owner.posts += 1
                    status, headers = owner.answer(owner.posts) if owner.answer else (202, {})
                    if 200 <= status < 300:
                        owner.cards.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/workflows/hook?sig=s3cret"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def card_text(envelope: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """Every string in a posted card, joined; with `keys`, only the values of those keys
    (e.g. "text" and "title": the words a reader of the card sees)."""
    found: list[str] = []

    def walk(value: Any, key: str | None = None) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, name)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, key)
        elif isinstance(value, str) and (keys is None or key in keys):
            found.append(value)

    walk(envelope)
    return "\n".join(found)
