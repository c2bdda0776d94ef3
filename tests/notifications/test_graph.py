"""Graph mail through the real msal client against a local HTTPS identity endpoint and Graph."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import pytest

from notifications.base import ChannelNotConfigured, TransportError
from notifications.graph import IDEMPOTENCY_HEADER, GraphMailTransport
from tests.notifications.conftest import Answer
from tests.notifications.samples import item, notification

TENANT = "tenant-0001"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "Cl13nt~S3cret.Value_xyz"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJNYWlsLlNlbmQiXX0.TOKENSECRET"
SENDER = "trauma-tracker@force.example"
SEND_PATH = f"/v1.0/users/{SENDER}/sendMail"
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"


class Entra:
    """The identity endpoint (OpenID discovery, token) and Graph's sendMail, on one server.
    `graph` is the script of sendMail answers (the last one repeats); `token` the token
    endpoint's answer."""

    def __init__(self):
        self.graph = [Answer(202)]
        self.token = Answer(
            200, {"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}
        )
        self.base = ""

    def __call__(self, request):
        path = request.path.split("?")[0]
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            return Answer(
                200,
                {
                    "issuer": f"{self.base}/{TENANT}/v2.0",
                    "authorization_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{self.base}{TOKEN_PATH}",
                    "jwks_uri": f"{self.base}/{TENANT}/discovery/v2.0/keys",
                },
            )
        if path == TOKEN_PATH:
            return self.token
        if path == SEND_PATH:
            return self.graph.pop(0) if len(self.graph) > 1 else self.graph[0]
        return Answer(404, "not here")


@pytest.fixture
def entra(http_server, server_tls, ca_bundle):
    fake = Entra()
    server = http_server(fake, tls=server_tls)
    fake.base = server.base
    fake.server = server
    return fake


def transport(entra, **options) -> GraphMailTransport:
    return GraphMailTransport(
        TENANT,
        CLIENT_ID,
        SECRET,
        SENDER,
        authority=f"{entra.base}/{TENANT}",
        endpoint=f"{entra.base}/v1.0",
        **options,
    )


def test_send_mail_body_and_token(entra):
    graph = transport(entra)
    graph.send(notification(key="tt-outbox-3"))

    (token_request,) = entra.server.to(TOKEN_PATH)
    form = parse_qs(token_request.body.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [CLIENT_ID]
    assert form["scope"] == [f"https://127.0.0.1:{entra.server.port}/.default"]

    (send,) = entra.server.to(SEND_PATH)
    assert send.method == "POST"
    assert send.headers["Authorization"] == f"Bearer {TOKEN}"
    body = send.json()
    assert body["saveToSentItems"] is False
    message = body["message"]
    assert message["subject"] == "Welfare conversation suggested: Alex Morgan"
    assert message["body"]["contentType"] == "HTML"
    assert (
        "A welfare conversation is suggested for <strong>Alex Morgan</strong>"
        in (message["body"]["content"])
    )
    assert message["toRecipients"] == [
        {"emailAddress": {"address": "sergeant@force.example", "name": "Sgt Jo Bloggs"}}
    ]
    assert message["internetMessageHeaders"] == [
        {"name": IDEMPOTENCY_HEADER, "value": "tt-outbox-3"}
    ]
    assert IDEMPOTENCY_HEADER.lower().startswith("x-")


def test_the_token_is_acquired_once_and_reused_from_msals_cache(entra):
    first = transport(entra)
    first.send(notification(key="a"))
    first.send(notification(key="b"))
    # Another transport with the same credentials (the next dispatch run) shares the app.
    transport(entra).send(notification(key="c"))
    assert len(entra.server.to(TOKEN_PATH)) == 1
    assert len(entra.server.to(SEND_PATH)) == 3


def test_429_waits_for_retry_after_then_sends(entra):
    entra.graph = [Answer(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "1"})]
    entra.graph.append(Answer(202))
    transport(entra).send(notification())
    first, second = entra.server.to(SEND_PATH)
    assert second.at - first.at >= 1.0
    assert first.body == second.body


def test_503_with_retry_after_beyond_the_wait_limit_is_deferred(entra):
    entra.graph = [Answer(503, "busy", {"Retry-After": "300"})]
    with pytest.raises(TransportError) as caught:
        transport(entra, max_wait=5).send(notification())
    assert not caught.value.permanent and caught.value.retry_after == 300
    assert len(entra.server.to(SEND_PATH)) == 1


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(401, True), (403, True), (404, True), (400, True), (500, False), (502, False)],
)
def test_answers_are_classified(entra, status, permanent):
    entra.graph = [
        Answer(status, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}})
    ]
    with pytest.raises(TransportError) as caught:
        transport(entra, retries=1, max_wait=1).send(notification())
    assert caught.value.permanent is permanent
    assert f"HTTP {status}" in caught.value.message
    # Permanent answers are not asked again, except 401 once with a new token.
    assert len(entra.server.to(SEND_PATH)) == (2 if status == 401 or not permanent else 1)
    _assert_secret_free(caught.value)


def test_a_401_gets_one_more_try_with_a_new_token(entra):
    graph = transport(entra)
    graph.send(notification(key="a"))  # a token now in msal's cache
    entra.graph = [Answer(401, {"error": {"code": "InvalidAuthenticationToken"}}), Answer(202)]
    graph.send(notification(key="b"))
    assert len(entra.server.to(TOKEN_PATH)) == 2  # the cached token was dropped once
    assert len(entra.server.to(SEND_PATH)) == 3


def test_401_is_permanent_and_an_echoed_token_is_scrubbed(entra):
    # A Graph that quotes the request's header back in its error.
    entra.graph = [Answer(401, f"InvalidAuthenticationToken: Bearer {TOKEN}")]
    with pytest.raises(TransportError) as caught:
        transport(entra).send(notification())
    assert caught.value.permanent
    assert "InvalidAuthenticationToken" in caught.value.message
    _assert_secret_free(caught.value)


def test_a_refused_client_secret_is_permanent_and_not_shown(entra):
    entra.token = Answer(
        401,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\n"
            "Trace ID: 0000\r\nCorrelation ID: 1111",
        },
    )
    with pytest.raises(TransportError) as caught:
        transport(entra).send(notification())
    assert caught.value.permanent
    assert "invalid_client: AADSTS7000215: Invalid client secret provided." in (
        caught.value.message
    )
    assert entra.server.to(SEND_PATH) == []
    _assert_secret_free(caught.value)


def test_an_identity_endpoint_that_is_down_is_transient(http_server, server_tls, ca_bundle):
    server = http_server(lambda request: Answer(503, "down"), tls=server_tls)
    graph = GraphMailTransport(
        TENANT,
        CLIENT_ID,
        SECRET,
        SENDER,
        authority=f"{server.base}/{TENANT}",
        endpoint=f"{server.base}/v1.0",
        timeout=3,
    )
    with pytest.raises(TransportError) as caught:
        graph.send(notification())
    assert not caught.value.permanent
    _assert_secret_free(caught.value)


def test_an_untrusted_graph_certificate_fails(http_server, server_tls, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    server = http_server(Entra(), tls=server_tls)
    graph = GraphMailTransport(
        TENANT, CLIENT_ID, SECRET, SENDER, authority=f"{server.base}/{TENANT}", timeout=3
    )
    with pytest.raises(TransportError) as caught:
        graph.send(notification())
    assert "certificate" in caught.value.message.lower() or "ssl" in caught.value.message.lower()
    _assert_secret_free(caught.value)


def test_several_items_render_into_one_mail(entra):
    items = (item(1), item(2, name="Sam Lee"))
    transport(entra).send(notification("digest", items=items))
    html = entra.server.to(SEND_PATH)[0].json()["message"]["body"]["content"]
    assert "Alex Morgan" in html and "Sam Lee" in html
    assert "https://tracker.force.example/alerts/2" in html


def test_missing_settings_are_named():
    with pytest.raises(ChannelNotConfigured) as caught:
        GraphMailTransport(TENANT, "", "", SENDER)
    assert "TT_GRAPH_CLIENT_ID" in str(caught.value)
    assert "TT_GRAPH_CLIENT_SECRET" in str(caught.value)
    assert "TT_GRAPH_TENANT_ID" not in str(caught.value)
    with pytest.raises(ChannelNotConfigured, match="TT_GRAPH_ENDPOINT"):
        GraphMailTransport(TENANT, CLIENT_ID, SECRET, SENDER, endpoint="http://graph.local")


def test_the_default_authority_is_the_tenants():
    graph = GraphMailTransport(TENANT, CLIENT_ID, SECRET, SENDER)
    assert graph.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert graph.scope == "https://graph.microsoft.com/.default"
    assert SECRET not in repr(graph)


def _assert_secret_free(error: TransportError) -> None:
    for text in (error.message, str(error), repr(error)):
        assert SECRET not in text
        assert TOKEN not in text and "TOKENSECRET" not in text


def test_neither_secret_nor_token_is_logged(entra, caplog):
    caplog.set_level(logging.DEBUG)
    entra.graph = [Answer(500), Answer(202), Answer(401, f"bad token {TOKEN}")]
    graph = transport(entra, retries=1, max_wait=1)
    graph.send(notification(key="a"))
    with pytest.raises(TransportError):
        graph.send(notification(key="b"))
    assert caplog.records  # msal and urllib3 did log
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text and "TOKENSECRET" not in caplog.text
