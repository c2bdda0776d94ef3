"""Delivery benchmark: 10,000 due notifications dispatched to a local SMTP server (aiosmtpd)
and to a local webhook (a threaded http.server answering 202), beside the raw rate of the
same machine in the same run:

- raw SMTP: smtplib sending the same messages (built beforehand) over one connection;
- raw webhook: requests posting the same JSON bodies (built beforehand) over one session;
- dispatch: `engine.delivery.dispatch` over the outbox: claim, render, send, record each.

The servers run in processes of their own, so they don't share the interpreter with the
sender. Raw sends and dispatch runs take turns, 1,000 messages at a time (`--chunk`), so a
busy moment on a shared machine slows both alike. Targets: at least
200 messages/s to SMTP and 100/s to the webhook, and at least half of the raw rate for each.

    .venv/bin/python bench/notify.py [--messages 10000] [--chunk 1000] [--db URL]

Results go to bench/out/notify.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import smtplib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.delivery import dispatch  # noqa: E402
from engine.rules.pack import load_pack  # noqa: E402
from models import OutboxMessage, table_of  # noqa: E402
from models.db import make_engine, migrate  # noqa: E402
from notifications.base import ChannelNotConfigured, Item, Notification  # noqa: E402
from notifications.smtp import SmtpTransport  # noqa: E402
from notifications.teams import TeamsTransport  # noqa: E402
from trauma_tracker.settings import SHIPPED_RULES  # noqa: E402

SENDER = "Trauma Tracker <tracker@force.example>"
BASE_URL = "https://tracker.force.example"
NOW = datetime(2026, 5, 12, 11, 0, tzinfo=UTC)  # noon in London: no quiet hours
OUT = ROOT / "bench" / "out"


# --- servers, each in a process of its own ---------------------------------------------------


def _smtp_server(ready, stop, counts) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            counts.value += 1
            return "250 OK"

    loop = asyncio.new_event_loop()
    handler = Counter()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="bench"), "127.0.0.1", 0)
    )
    ready.put(server.sockets[0].getsockname()[1])

    async def wait() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)

    loop.run_until_complete(wait())
    server.close()


def _webhook_server(ready, stop, counts) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            counts.value += 1
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()


class Server:
    def __init__(self, target):
        self.ready = multiprocessing.Queue()
        self.stop = multiprocessing.Event()
        self.counts = multiprocessing.Value("i", 0, lock=False)
        self.process = multiprocessing.Process(
            target=target, args=(self.ready, self.stop, self.counts), daemon=True
        )
        self.process.start()
        self.port = self.ready.get(timeout=30)

    @property
    def received(self) -> int:
        return self.counts.value

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)


# --- the messages ----------------------------------------------------------------------------


def notification(n: int, channel: str) -> Notification:
    item = Item(
        n, f"Officer {n:05d}", "Combined welfare indicator", "high", f"{BASE_URL}/alerts/{n}"
    )
    return Notification(
        key=f"tt-alert-{n}",
        kind="alert",
        channel=channel,
        address=f"officer{n:05d}@force.example",
        recipient_name=f"Sergeant {n:05d}",
        items=(item,),
    )


def queue(engine: sa.Engine, count: int, channel: str) -> None:
    table = table_of(OutboxMessage)
    rows = []
    for n in range(count):
        body = {
            "kind": "alert",
            "alert_id": n,
            "staff_id": f"S{n:05d}",
            "name": f"Officer {n:05d}",
            "title": "Combined welfare indicator",
            "severity": "high",
            "link": f"/alerts/{n}",
        }
        rows.append(
            {
                "alert_id": n,
                "kind": "alert",
                "channel": channel,
                "recipient": f"officer{n:05d}@force.example",
                "payload": json.dumps(body, sort_keys=True),
                "status": "pending",
                "due_at": NOW,
                "created_at": NOW,
                "attempts": 0,
            }
        )
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


# --- the runs --------------------------------------------------------------------------------


class RawSmtp:
    """smtplib over one connection, the messages built beforehand."""

    def __init__(self, port: int, count: int):
        transport = SmtpTransport(f"smtp://127.0.0.1:{port}", SENDER)
        self.messages = [transport.build_message(notification(n, "email")) for n in range(count)]
        self.connection = smtplib.SMTP("127.0.0.1", port)
        self.next = 0

    def send(self, count: int) -> None:
        for n in range(self.next, self.next + count):
            self.connection.send_message(
                self.messages[n],
                from_addr="tracker@force.example",
                to_addrs=[f"officer{n:05d}@force.example"],
            )
        self.next += count

    def close(self) -> None:
        self.connection.quit()


class RawWebhook:
    """requests over one session, the JSON bodies built beforehand."""

    def __init__(self, port: int, count: int):
        transport = TeamsTransport(f"http://127.0.0.1:{port}/hook")
        self.bodies = [
            json.dumps(transport.message(notification(n, "teams"))) for n in range(count)
        ]
        self.session = requests.Session()
        self.url = f"http://127.0.0.1:{port}/hook"
        self.next = 0

    def send(self, count: int) -> None:
        headers = {"Content-Type": "application/json"}
        for body in self.bodies[self.next : self.next + count]:
            self.session.post(self.url, data=body, headers=headers, timeout=10).raise_for_status()
        self.next += count

    def close(self) -> None:
        self.session.close()


def race(raw, url: str, transports: dict, count: int, chunk: int, channel: str):
    """Raw sends and dispatch runs take turns, `chunk` messages at a time, so that a busy
    moment on a shared machine slows both alike. Returns (raw seconds, dispatch seconds)."""
    engine = make_engine(url)
    migrate(engine)
    queue(engine, count, channel)
    routing = load_pack(SHIPPED_RULES).routing
    raw_time = dispatch_time = 0.0
    sent = 0
    while sent < count:
        size = min(chunk, count - sent)
        started = time.perf_counter()
        raw.send(size)
        raw_time += time.perf_counter() - started
        started = time.perf_counter()
        report = dispatch(
            engine, transports, routing=routing, base_url=BASE_URL, now=NOW, limit=size
        )
        dispatch_time += time.perf_counter() - started
        if report.sent != size or report.failed or report.deferred:
            raise SystemExit(f"dispatch to {channel}: {report.to_json()}")
        sent += size
    raw.close()
    engine.dispose()
    return raw_time, dispatch_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="Messages per turn")
    parser.add_argument("--db", help="Database URL for the outbox (default: a new SQLite file)")
    args = parser.parse_args()
    count = args.messages
    smtp_server, webhook_server = Server(_smtp_server), Server(_webhook_server)
    results = []
    try:
        with tempfile.TemporaryDirectory() as scratch:

            def database(name: str) -> str:
                return args.db or f"sqlite:///{Path(scratch) / name}.sqlite"

            smtp = SmtpTransport(f"smtp://127.0.0.1:{smtp_server.port}", SENDER)
            teams = TeamsTransport(f"http://127.0.0.1:{webhook_server.port}/hook")
            missing = ChannelNotConfigured("not in this run")
            raw, took = race(
                RawSmtp(smtp_server.port, count),
                database("email"),
                {"email": smtp, "teams": missing},
                count,
                args.chunk,
                "email",
            )
            results.append(("SMTP (aiosmtpd)", raw, took, 200))
            raw, took = race(
                RawWebhook(webhook_server.port, count),
                database("teams"),
                {"email": missing, "teams": teams},
                count,
                args.chunk,
                "teams",
            )
            results.append(("webhook (http.server, 202)", raw, took, 100))
            # Every message arrived, once from each side.
            assert smtp_server.received == 2 * count, smtp_server.received
            assert webhook_server.received == 2 * count, webhook_server.received
    finally:
        smtp_server.close()
        webhook_server.close()

    database_kind = (args.db or "sqlite").split(":")[0].split("+")[0]
    print(
        f"{count:,} notifications per channel, raw and dispatch in turns of {args.chunk:,}, "
        f"outbox on {database_kind}, {platform.node()}"
    )
    print(
        "| channel | raw msg/s | dispatch msg/s | dispatch / raw | target | met |\n"
        "|---|---:|---:|---:|---|---|"
    )
    document = []
    for name, raw, took, target in results:
        raw_rate, rate = count / raw, count / took
        met = rate >= target and rate >= raw_rate / 2
        print(
            f"| {name} | {raw_rate:,.0f} | {rate:,.0f} | {rate / raw_rate:.0%} | "
            f">= {target}/s and >= 50% of raw | {'yes' if met else 'NO'} |"
        )
        document.append(
            {
                "channel": name,
                "messages": count,
                "raw_per_s": round(raw_rate, 1),
                "dispatch_per_s": round(rate, 1),
                "ratio": round(rate / raw_rate, 3),
                "target_per_s": target,
                "met": met,
            }
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "notify.json").write_text(
        json.dumps({"database": database_kind, "results": document}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
