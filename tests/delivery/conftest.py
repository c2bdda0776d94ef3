"""The dispatcher's tests: a real database of each kind, a real SMTP server and a real webhook
server on loopback, and the real transports. The clock is the test's: every dispatch gets
`now`."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.alerts.decisions import decide
from engine.delivery.dispatch import DispatchReport, dispatch
from engine.rules.pack import Routing, routing_from
from engine.yamlfile import LinedDocument
from models import OutboxMessage, table_of
from notifications.smtp import SmtpTransport
from notifications.teams import TeamsTransport
from tests.delivery.servers import SmtpServer, Webhook
from tests.engine.rulekit import add_people, database, default_pack

SENDER = "Trauma Tracker <tracker@force.example>"
BASE_URL = "https://tracker.force.example"
WELLBEING = "wellbeing@force.example"
outbox_t = table_of(OutboxMessage)

# The shipped routing, as data a test can vary.
ROUTING: dict[str, Any] = {
    "recipients": {
        "supervisor": {"channels": ["teams", "email"]},
        "wellbeing": {"channels": ["email"], "email": WELLBEING},
    },
    "quiet_hours": {
        "from": "20:00",
        "to": "07:00",
        "timezone": "Europe/London",
        "except": ["high"],
    },
    "digest": "15m",
    "escalate": {"after": "72h", "to": "wellbeing"},
}


def routing(**changes: Any) -> Routing:
    """The shipped routing with top-level keys replaced (None removes one)."""
    data = {**ROUTING, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    return routing_from(LinedDocument("test:routing.yaml", data, {}))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    yield server
    server.stop()


@pytest.fixture
def db(database_url) -> Iterator[sa.Engine]:
    """S1 and S4 report to S2, who reports to S3; everyone has an address."""
    engine = database(database_url)
    add_people(
        engine,
        {"staff_id": "S1", "supervisor_id": "S2", "email": "s1@force.example"},
        {"staff_id": "S2", "supervisor_id": "S3", "email": "s2@force.example"},
        {"staff_id": "S3", "email": "s3@force.example", "display_name": "Inspector Three"},
        {"staff_id": "S4", "supervisor_id": "S2", "email": "s4@force.example"},
    )
    yield engine
    engine.dispose()


class Dispatcher:
    """`dispatch` with the real transports to the test's servers; `run(now)` is one pass."""

    def __init__(self, engine: sa.Engine, smtp: SmtpServer, webhook: Webhook):
        self.engine = engine
        self.smtp = smtp
        self.webhook = webhook
        self.routing = routing()
        self.transports: dict[str, Any] = {
            "email": SmtpTransport(smtp.url, SENDER, timeout=5),
            "teams": TeamsTransport(webhook.url, retries=0, timeout=5),
        }

    def run(self, now: str | datetime, **options: Any) -> DispatchReport:
        moment = utc(now) if isinstance(now, str) else now
        options.setdefault("rng", random.Random(7))
        return dispatch(
            self.engine,
            options.pop("transports", self.transports),
            routing=options.pop("routing", self.routing),
            base_url=BASE_URL,
            now=moment,
            **options,
        )

    def rows(self, *where: Any) -> list[Any]:
        with self.engine.connect() as conn:
            query = sa.select(outbox_t).where(*where).order_by(outbox_t.c.id)
            return conn.execute(query).all()


@pytest.fixture
def dispatcher(db, smtp, webhook) -> Dispatcher:
    return Dispatcher(db, smtp, webhook)


def open_alerts(engine: sa.Engine, snapshots, exposures=(), *, at: datetime, pack=None):
    """Run the rules (the real evaluation) at `at`: alerts and their outbox rows."""
    with engine.begin() as conn:
        summary = decide(conn, pack or default_pack(), snapshots, exposures, as_of=at, now=at)
    return summary.alert_ids


def queue(
    engine: sa.Engine,
    *,
    recipient: str,
    channel: str = "email",
    kind: str = "alert",
    severity: str = "high",
    at: datetime,
    alert_id: int | None = None,
    name: str = "Person S1",
    count: int = 1,
) -> list[int]:
    """Outbox rows as engine.alerts.lifecycle writes them (for tests about the outbox itself)."""
    rows = []
    for n in range(count):
        ident = alert_id if alert_id is not None else 1000 + n
        body = {
            "kind": kind,
            "alert_id": ident,
            "staff_id": "S1",
            "name": name,
            "title": "Combined welfare indicator",
            "severity": severity,
            "link": f"/alerts/{ident}",
        }
        rows.append(
            {
                "alert_id": ident,
                "kind": kind,
                "channel": channel,
                "recipient": recipient,
                "payload": json.dumps(body, sort_keys=True),
                "status": "pending",
                "due_at": at,
                "created_at": at,
                "attempts": 0,
            }
        )
    with engine.begin() as conn:
        result = conn.execute(
            outbox_t.insert().returning(outbox_t.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars())
