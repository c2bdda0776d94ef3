"""Building each channel from the delivery settings, or saying which setting is missing."""

from __future__ import annotations

import pytest

from notifications import CHANNELS, build_transports, email_transport
from notifications.base import ChannelNotConfigured
from notifications.graph import GraphMailTransport
from notifications.smtp import SmtpTransport
from notifications.teams import TeamsTransport
from trauma_tracker.settings import DeliverySettings


def test_nothing_configured_names_every_missing_setting():
    made = build_transports(DeliverySettings())
    assert set(made) == set(CHANNELS)
    assert isinstance(made["email"], ChannelNotConfigured)
    assert "TT_SMTP_URL and TT_EMAIL_FROM, or the TT_GRAPH_* settings" in str(made["email"])
    assert isinstance(made["teams"], ChannelNotConfigured)
    assert "TT_TEAMS_WEBHOOK_URL" in str(made["teams"])


def test_smtp_and_teams_from_settings():
    made = build_transports(
        DeliverySettings(
            smtp_url="smtp://mail.force.example:587",
            email_from="tracker@force.example",
            teams_webhook_url="https://flows.example.com/hook?sig=abc",
        )
    )
    assert isinstance(made["email"], SmtpTransport) and made["email"].channel == "email"
    assert isinstance(made["teams"], TeamsTransport) and made["teams"].channel == "teams"


def test_graph_when_its_settings_are_given_and_the_missing_ones_named():
    full = DeliverySettings(
        graph_tenant_id="t",
        graph_client_id="c",
        graph_client_secret="s",
        graph_sender="tracker@force.example",
        smtp_url="smtp://ignored.example",
    )
    graph = email_transport(full)
    assert isinstance(graph, GraphMailTransport) and graph.channel == "email"
    with pytest.raises(ChannelNotConfigured) as caught:
        email_transport(DeliverySettings(graph_tenant_id="t", graph_sender="a@force.example"))
    assert "TT_GRAPH_CLIENT_ID, TT_GRAPH_CLIENT_SECRET" in str(caught.value)


def test_half_an_smtp_setting_names_the_other_half():
    with pytest.raises(ChannelNotConfigured, match="TT_EMAIL_FROM"):
        email_transport(DeliverySettings(smtp_url="smtp://mail.force.example"))
