"""Teams: cards posted to a Workflows webhook stand-in on loopback (202, 429, 500, 400)."""

from __future__ import annotations

import logging
import socket

import pytest

from notifications.base import ChannelNotConfigured, TransportError
from notifications.teams import CARD_CONTENT_TYPE, TeamsTransport
from tests.notifications.conftest import Answer
from tests.notifications.samples import item, notification

SIGNATURE = "Zx9SigNatureSECRETvalue0123456789abcdef"
PATH = "/workflows/abc123/triggers/manual/paths/invoke"
QUERY = f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIGNATURE}"


def scripted(*answers: Answer):
    """A route answering with `answers` in order (the last one again once they run out)."""
    queue = list(answers)

    def route(request):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return route


def webhook(server) -> str:
    return f"{server.base}{PATH}{QUERY}"


def test_202_is_sent_and_the_card_posted_is_valid(http_server, validate_cards):
    server = http_server(scripted(Answer(202)))
    transport = TeamsTransport(webhook(server))

    transport.send(notification(key="tt-outbox-5", channel="teams"))

    (request,) = server.to(PATH)
    assert request.headers["Content-Type"].startswith("application/json")
    body = request.json()
    assert set(body) == {"type", "attachments"} and body["type"] == "message"
    (attachment,) = body["attachments"]
    assert set(attachment) == {"contentType", "content"}
    assert attachment["contentType"] == CARD_CONTENT_TYPE
    card = attachment["content"]
    assert validate_cards([card]) == [[]]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open the alert",
            "url": "https://tracker.force.example/alerts/1",
        }
    ]
    texts = _texts(card)
    assert "Welfare conversation suggested for Alex Morgan: " in "".join(texts)
    assert "Ref: tt-outbox-5" in texts
    assert any(t == "Severity: High" for t in texts)
    mention = card["msteams"]["entities"][0]
    assert mention["mentioned"]["id"] == "sergeant@force.example"
    assert f"Hello {mention['text']}," in texts


def test_any_2xx_is_success(http_server):
    server = http_server(scripted(Answer(200, {"ok": True})))
    TeamsTransport(webhook(server)).send(notification(channel="teams"))
    assert len(server.to(PATH)) == 1


def test_429_waits_as_long_as_retry_after_asks_then_sends(http_server):
    server = http_server(scripted(Answer(429, headers={"Retry-After": "1"}), Answer(202)))
    transport = TeamsTransport(webhook(server))

    transport.send(notification(channel="teams"))

    first, second = server.to(PATH)
    assert second.at - first.at >= 1.0
    assert first.body == second.body  # the same card, the same Ref


def test_a_retry_after_longer_than_the_helper_waits_defers_to_the_dispatcher(http_server):
    server = http_server(scripted(Answer(429, headers={"Retry-After": "120"})))
    transport = TeamsTransport(webhook(server), max_wait=5)
    with pytest.raises(TransportError) as caught:
        transport.send(notification(channel="teams"))
    assert not caught.value.permanent
    assert caught.value.retry_after == 120
    assert len(server.to(PATH)) == 1  # it did not sleep two minutes here


def test_500_is_transient_after_bounded_retries(http_server):
    server = http_server(scripted(Answer(500, "flow failed")))
    transport = TeamsTransport(webhook(server), retries=2)
    with pytest.raises(TransportError) as caught:
        transport.send(notification(channel="teams"))
    assert not caught.value.permanent
    assert "HTTP 500" in caught.value.message and "3 attempts" in caught.value.message
    assert len(server.to(PATH)) == 3


def test_400_is_permanent_at_once(http_server):
    server = http_server(scripted(Answer(400, {"error": "InvalidRequestContent"})))
    transport = TeamsTransport(webhook(server))
    with pytest.raises(TransportError) as caught:
        transport.send(notification(channel="teams"))
    assert caught.value.permanent
    assert "HTTP 400" in caught.value.message
    assert len(server.to(PATH)) == 1


def test_202_429_500_400_in_turn_are_classified_each(http_server):
    server = http_server(
        scripted(
            Answer(202),
            Answer(429, headers={"Retry-After": "1"}),
            Answer(500),
            Answer(400),
        )
    )
    transport = TeamsTransport(webhook(server), retries=0)
    outcomes = []
    for n in range(4):
        try:
            transport.send(notification(key=f"k{n}", channel="teams"))
            outcomes.append("sent")
        except TransportError as error:
            outcomes.append(("permanent" if error.permanent else "transient", error.retry_after))
    assert outcomes == ["sent", ("transient", 1.0), ("transient", None), ("permanent", None)]


def test_no_error_message_shows_the_webhook_signature(http_server):
    # A far end that echoes the URL it was called with, as some error pages do.
    server = http_server(lambda request: Answer(404, f"no flow at {request.path}"))
    transport = TeamsTransport(webhook(server))
    with pytest.raises(TransportError) as caught:
        transport.send(notification(channel="teams"))
    _assert_secret_free(caught.value)
    assert "HTTP 404" in caught.value.message

    # A connection that fails: requests puts the whole URL in its error.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = TeamsTransport(f"http://127.0.0.1:{port}{PATH}{QUERY}", retries=0, timeout=2)
    with pytest.raises(TransportError) as caught:
        transport.send(notification(channel="teams"))
    assert not caught.value.permanent
    _assert_secret_free(caught.value)
    assert SIGNATURE not in repr(transport)


def test_several_items_each_get_a_button(http_server, validate_cards):
    server = http_server(scripted(Answer(202)))
    items = (item(1), item(2, name="Sam Lee", severity="low"), item(3, name="Jo Hart"))
    TeamsTransport(webhook(server)).send(notification("digest", items=items, channel="teams"))
    card = server.to(PATH)[0].json()["attachments"][0]["content"]
    assert validate_cards([card]) == [[]]
    urls = [a["url"] for a in _actions(card)]
    assert urls == [f"https://tracker.force.example/alerts/{n}" for n in (1, 2, 3)]


@pytest.mark.parametrize(
    "url",
    ["", "http://flows.example.com/hook", "ftp://127.0.0.1/x", "https:///no-host"],
)
def test_a_missing_or_unusable_webhook_names_the_setting(url):
    with pytest.raises(ChannelNotConfigured) as caught:
        TeamsTransport(url)
    assert "TT_TEAMS_WEBHOOK_URL" in str(caught.value)
    assert not url or url not in str(caught.value)  # the URL itself is never repeated


def _assert_secret_free(error: TransportError) -> None:
    for text in (error.message, str(error), repr(error)):
        assert SIGNATURE not in text
        assert "sig=" not in text
        assert QUERY not in text


def _texts(node) -> list[str]:
    """Every TextBlock text, and each RichTextBlock's runs joined, anywhere in a card."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if node.get("type") == "RichTextBlock":
            found.append("".join(run["text"] for run in node["inlines"]))
        for value in node.values():
            found += _texts(value)
    elif isinstance(node, list):
        for value in node:
            found += _texts(value)
    return found


def _actions(node) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.OpenUrl":
            found.append(node)
        for value in node.values():
            found += _actions(value)
    elif isinstance(node, list):
        for value in node:
            found += _actions(value)
    return found


def test_the_signature_stays_out_of_every_log_record(http_server, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs each request's path and query at DEBUG
    server = http_server(scripted(Answer(500), Answer(202), Answer(400)))
    transport = TeamsTransport(webhook(server), retries=1, max_wait=1)
    transport.send(notification(channel="teams"))  # 500, then 202
    with pytest.raises(TransportError):
        transport.send(notification(channel="teams"))
    assert "/paths/invoke" in caplog.text  # the library did log the request...
    assert SIGNATURE not in caplog.text  # ...without its signature
