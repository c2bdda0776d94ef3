"""Microsoft Teams: an Adaptive Card posted to a Power Automate Workflows webhook.

TT_TEAMS_WEBHOOK_URL is the URL of a flow started by "When a Teams webhook request is
received" (Office 365 connectors, the old incoming webhooks, are retired). The body is exactly

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "content": CARD}]}

with CARD from render.render_card. Nothing is added at the top level: the recipient's address
travels inside the card, as the @mention of them (`msteams.entities[0].mentioned.id`), which a
flow can use to post in a chat with that person.

Any 2xx is sent (Workflows answers 202 Accepted: the flow runs afterwards, and what it does is
seen in the flow's run history, not here). 429 and 503 honour Retry-After; other 5xx are
transient; other 4xx permanent. The URL's query holds the signature that lets anyone post, so
no message names more of it than the host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from notifications.base import ChannelNotConfigured, Notification, Transport, TransportError
from notifications.http import DEFAULT_TIMEOUT, host_of, is_loopback, post_json
from notifications.render import RenderError, render_card

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The message a Workflows webhook takes: one Adaptive Card attachment."""
    return {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}]}


class TeamsTransport(Transport):
    """Cards to a Workflows webhook; see the module docstring."""

    channel = "teams"

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        max_wait: float = 10.0,
    ):
        """`webhook_url` is TT_TEAMS_WEBHOOK_URL: https://, or http:// to a loopback address.

        :raise ChannelNotConfigured: when it is missing or not such a URL (the message never
            repeats the URL: it holds the signature).
        """
        if not webhook_url:
            raise ChannelNotConfigured("teams: set TT_TEAMS_WEBHOOK_URL (a Workflows webhook)")
        parts = urlsplit(webhook_url)
        plain_local = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not parts.hostname or (parts.scheme != "https" and not plain_local):
            raise ChannelNotConfigured(
                "teams: TT_TEAMS_WEBHOOK_URL must be the https:// URL the Workflows trigger "
                "'When a Teams webhook request is received' shows"
            )
        self._url = webhook_url
        self.timeout = timeout
        self.retries = retries
        self.max_wait = max_wait
        self._where = f"teams (webhook {host_of(webhook_url)})"
        self._session = requests.Session()

    def __repr__(self) -> str:  # never the URL: it holds the signature
        return f"TeamsTransport({self._where})"

    def message(self, n: Notification) -> dict[str, Any]:
        """The JSON body posted for `n`."""
        try:
            return envelope(render_card(n))
        except RenderError as error:
            raise TransportError(f"teams: can't render the card: {error}", permanent=True) from None

    def send(self, notification: Notification) -> None:
        """Post one card, or raise TransportError."""
        post_json(
            self._session,
            self._url,
            self.message(notification),
            where=self._where,
            timeout=self.timeout,
            retries=self.retries,
            max_wait=self.max_wait,
        )
