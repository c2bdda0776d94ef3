"""What every delivery channel shares: the message it is given and the one error it raises.

A transport sends one `Notification` or raises `TransportError`; nothing else escapes it. The
dispatcher (the outbox) records the outcome: a transient error is retried with backoff (after
`retry_after` seconds at least, when the far end said so), a permanent one fails the message
at once and marks the channel unhealthy until a send succeeds.

A notification carries the minimum (DESIGN.md, Delivery): who needs a welfare conversation,
why in one line (the rule's title), the severity, and a link. Never incident references,
codes, places, health or absence detail, points or indicator values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar


class TransportError(Exception):
    """A send that did not happen. `permanent`: retrying the same message cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class ChannelNotConfigured(Exception):
    """A channel whose settings are missing; the message names the missing setting."""


@dataclass(frozen=True)
class Item:
    """One alert in a message: whose welfare, why (the rule's title), how urgent, where."""

    alert_id: int
    person_name: str
    title: str
    severity: str  # low | medium | high
    link: str  # absolute URL of the alert in the web app


@dataclass(frozen=True)
class Notification:
    """One message to one recipient on one channel.

    `key` is the idempotency key, derived from the outbox row: a copy sent again after a crash
    carries the same key (the email's Message-ID, the id in the Teams card).
    """

    key: str
    kind: str  # alert | digest | escalation | follow_up | conversation_request
    channel: str  # email | teams
    address: str  # an email address; for Teams, the recipient's address (the flow routes it)
    recipient_name: str | None
    items: tuple[Item, ...]
    follow_up: str | None = None  # for a follow-up reminder: its label, e.g. 72h
    extra: dict[str, str] = field(default_factory=dict)


class Transport:
    """A channel. Subclasses set `channel` and implement `send`; `session()` wraps one
    dispatch run so that a connection (SMTP) or token (Graph) is reused across its messages."""

    channel: ClassVar[str]

    @contextmanager
    def session(self) -> Iterator[Transport]:
        yield self

    def send(self, notification: Notification) -> None:
        """Send it, or raise TransportError."""
        raise NotImplementedError
