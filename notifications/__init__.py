"""Notification channels over a small base (base.py), and the outbox dispatcher.

Channels by name: `email` (SMTP, smtp.py, or Microsoft Graph, graph.py) and `teams` (a
Workflows webhook, teams.py). `build_transports` makes each from the delivery settings, or the
ChannelNotConfigured that says which setting is missing; nothing here reads the environment.
Channel modules are imported only when used, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from notifications.base import ChannelNotConfigured, Transport

CHANNELS = ("email", "teams")


class DeliveryConfig(Protocol):
    """The attributes of trauma_tracker.settings.DeliverySettings that channels use."""

    smtp_url: str | None
    email_from: str | None
    teams_webhook_url: str | None
    graph_tenant_id: str | None
    graph_client_id: str | None
    graph_client_secret: str | None
    graph_sender: str | None
    graph_authority: str | None
    graph_endpoint: str


def email_transport(delivery: DeliveryConfig, **options: Any) -> Transport:
    """Graph mail when any TT_GRAPH_* credential is set, SMTP otherwise.

    :raise ChannelNotConfigured: naming the missing setting(s).
    """
    graph = (
        delivery.graph_tenant_id,
        delivery.graph_client_id,
        delivery.graph_client_secret,
        delivery.graph_sender,
    )
    if any(graph):
        from notifications.graph import GraphMailTransport

        return GraphMailTransport(
            delivery.graph_tenant_id or "",
            delivery.graph_client_id or "",
            delivery.graph_client_secret or "",
            delivery.graph_sender or "",
            authority=delivery.graph_authority,
            endpoint=delivery.graph_endpoint,
            **options,
        )
    if delivery.smtp_url or delivery.email_from:
        from notifications.smtp import SmtpTransport

        return SmtpTransport(delivery.smtp_url or "", delivery.email_from or "", **options)
    raise ChannelNotConfigured(
        "email: set TT_SMTP_URL and TT_EMAIL_FROM, or the TT_GRAPH_* settings"
    )


def teams_transport(delivery: DeliveryConfig, **options: Any) -> Transport:
    """The Workflows webhook transport. :raise ChannelNotConfigured: when it is not set."""
    from notifications.teams import TeamsTransport

    return TeamsTransport(delivery.teams_webhook_url or "", **options)


def build_transports(delivery: DeliveryConfig) -> dict[str, Transport | ChannelNotConfigured]:
    """Each channel's transport, or the ChannelNotConfigured explaining what is missing (the
    dispatcher keeps that channel's messages pending and reports the message)."""
    made: dict[str, Transport | ChannelNotConfigured] = {}
    for name, build in (("email", email_transport), ("teams", teams_transport)):
        try:
            made[name] = build(delivery)
        except ChannelNotConfigured as missing:
            made[name] = missing
    return made
