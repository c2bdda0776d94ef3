"""Delivery composed from the settings: which transport each channel uses, and one dispatch.

Email goes by SMTP when TT_SMTP_URL is set, else by Microsoft Graph when the TT_GRAPH_*
settings are; Teams by the Workflows webhook in TT_TEAMS_WEBHOOK_URL. A channel without its
settings maps to a `ChannelNotConfigured` naming what is missing: `notify` reports it and its
messages stay pending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.delivery.dispatch import DispatchReport, dispatch
from engine.rules.active import load_active
from notifications.base import ChannelNotConfigured, Transport
from trauma_tracker.settings import DeliverySettings, Settings

GRAPH_SETTINGS = (
    ("graph_tenant_id", "TT_GRAPH_TENANT_ID"),
    ("graph_client_id", "TT_GRAPH_CLIENT_ID"),
    ("graph_client_secret", "TT_GRAPH_CLIENT_SECRET"),
    ("graph_sender", "TT_GRAPH_SENDER"),
)


def _built(kind: type[Transport], *args: Any, **options: Any) -> Transport | ChannelNotConfigured:
    """The transport, or the constructor's own account of the setting it can't use."""
    try:
        return kind(*args, **options)
    except ChannelNotConfigured as error:
        return error


def _email(settings: DeliverySettings) -> Transport | ChannelNotConfigured:
    if settings.smtp_url:
        if not settings.email_from:
            return ChannelNotConfigured("TT_EMAIL_FROM is not set (the sender of the emails)")
        from notifications.smtp import SmtpTransport

        return _built(SmtpTransport, settings.smtp_url, settings.email_from)
    given = [env for attr, env in GRAPH_SETTINGS if getattr(settings, attr)]
    if not given:
        return ChannelNotConfigured(
            "TT_SMTP_URL is not set (or, for Microsoft Graph, TT_GRAPH_TENANT_ID, "
            "TT_GRAPH_CLIENT_ID, TT_GRAPH_CLIENT_SECRET and TT_GRAPH_SENDER)"
        )
    missing = [env for attr, env in GRAPH_SETTINGS if not getattr(settings, attr)]
    if missing:
        return ChannelNotConfigured(
            f"{', '.join(missing)} not set (Microsoft Graph mail needs all four TT_GRAPH_* "
            "settings), and TT_SMTP_URL is not set either"
        )
    from notifications.graph import GraphMailTransport

    return _built(
        GraphMailTransport,
        settings.graph_tenant_id,
        settings.graph_client_id,
        settings.graph_client_secret,
        settings.graph_sender,
        authority=settings.graph_authority,
        endpoint=settings.graph_endpoint,
    )


def _teams(settings: DeliverySettings) -> Transport | ChannelNotConfigured:
    if not settings.teams_webhook_url:
        return ChannelNotConfigured("TT_TEAMS_WEBHOOK_URL is not set (the Workflows webhook)")
    from notifications.teams import TeamsTransport

    return _built(TeamsTransport, settings.teams_webhook_url)


def transports_from(settings: DeliverySettings) -> dict[str, Transport | ChannelNotConfigured]:
    """Channel -> its transport, or ChannelNotConfigured saying which setting is missing."""
    return {"email": _email(settings), "teams": _teams(settings)}


def dispatch_now(
    settings: Settings, engine: sa.Engine, now: datetime | None = None
) -> DispatchReport:
    """Send what is due, with the active routing (the rule files', else the last good one).

    Without TT_BASE_URL every channel counts as not configured: a message's link would lead
    nowhere. :raise NoValidRuleset: no routing can be loaded at all.
    """
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        routing = load_active(conn, settings.rules_dir, now).pack.routing
    transports = transports_from(settings.delivery)
    if not settings.base_url:
        missing = ChannelNotConfigured("TT_BASE_URL is not set (messages link to the web app)")
        transports = dict.fromkeys(transports, missing)
    return dispatch(engine, transports, routing=routing, base_url=settings.base_url or "", now=now)
