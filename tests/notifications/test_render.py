"""Every email and card the code can produce: valid, kind, and carrying nothing it must not.

Sentinels go into every field that must never be rendered (`extra`, the follow-up label);
the rendered output must not contain them, nor any digit outside the links and the Ref.
"""

from __future__ import annotations

import itertools
import json
import re
from html.parser import HTMLParser

import pytest

from notifications.base import Item, Notification
from notifications.render import (
    CARD_VERSION,
    FOOTER,
    KINDS,
    SEVERITIES,
    RenderError,
    names_line,
    render_card,
    render_email,
)

# What an outbox row or an alert knows and a message must never say.
SENTINELS = {
    "incident_ref": "INC-SENTINEL-REF",
    "incident_code": "CODE-SENTINEL",
    "place": "SENTINEL-PLACE-STREET",
    "victim": "SENTINEL-VICTIM-NAME",
    "absence_reason": "SENTINEL-ABSENCE-REASON",
    "health": "SENTINEL-HEALTH-DETAIL",
    "points": "7391",
    "indicator_value": "48.25",
    "trauma_points_90d": "6173",
}
FOLLOW_UP_SENTINEL = "FOLLOWUP-SENTINEL-72h"
KEY = "tt-outbox-41"
NAMES = ("Alex Morgan", "Sam O'Neil", "Priya Shah-Jones", "Chris Lee")
TITLE = "Sustained exposure with cancelled rest days"


def items_for(count: int, severity: str) -> tuple[Item, ...]:
    return tuple(
        Item(
            alert_id=100 + n,
            person_name=NAMES[n % len(NAMES)],
            title=TITLE,
            severity=severity,
            link=f"https://tracker.force.example/alerts/{100 + n}",
        )
        for n in range(count)
    )


def every_notification() -> list[Notification]:
    """Each kind, with one item and with several, at each severity, with and without a
    recipient name, to an email address and to a staff id."""
    made = []
    for kind, count, severity, (address, name) in itertools.product(
        KINDS,
        (1, 3, 12),
        SEVERITIES,
        (("sergeant@force.example", "Sgt Jo Bloggs"), ("S0042", None)),
    ):
        made.append(
            Notification(
                key=KEY,
                kind=kind,
                channel="email",
                address=address,
                recipient_name=name,
                items=items_for(count, severity),
                follow_up=FOLLOW_UP_SENTINEL if kind == "follow_up" else None,
                extra=dict(SENTINELS),
            )
        )
    return made


ALL = every_notification()


def _ids(n: Notification) -> str:
    return f"{n.kind}-{len(n.items)}-{n.items[0].severity}-{n.recipient_name is not None}"


def _rendered(n: Notification) -> dict[str, str]:
    subject, text, html = render_email(n)
    card = render_card(n)
    return {
        "subject": subject,
        "text": text,
        "html": html,
        "card": json.dumps(card, ensure_ascii=False),
    }


def _shown(n: Notification) -> dict[str, str]:
    """What a reader sees: the text part, the HTML's text and link targets, the card's
    texts, action titles and urls (not its version or styling)."""
    subject, text, html = render_email(n)
    reader = _Visible()
    reader.feed(html)
    card = render_card(n)
    card_words = [card.get("fallbackText", "")]
    for block in _blocks(card, "TextBlock"):
        card_words.append(block["text"])
    for block in _blocks(card, "RichTextBlock"):
        card_words += [run["text"] for run in block["inlines"]]
    for action in _blocks(card, "Action.OpenUrl"):
        card_words += [action.get("title", ""), action["url"]]
    return {
        "subject": subject,
        "text": text,
        "html": "\n".join(reader.seen),
        "card": "\n".join(card_words),
    }


def _without_links_and_ref(text: str, n: Notification) -> str:
    for item in n.items:
        text = text.replace(item.link, "")
    return text.replace(KEY, "")


@pytest.mark.parametrize("n", ALL, ids=_ids)
def test_nothing_forbidden_is_rendered(n):
    for part, text in _rendered(n).items():
        for field, sentinel in [*SENTINELS.items(), ("follow_up", FOLLOW_UP_SENTINEL)]:
            assert sentinel not in text, f"{part} shows {field}"
    for part, text in _shown(n).items():
        bare = _without_links_and_ref(text, n)
        # No digit at all outside links and Ref: no points, counts, values or ids slip in.
        assert not re.search(r"\d", bare), f"{part}: {bare!r}"
        lowered = bare.lower()
        for word in ("points", "score", "incident", "sickness", "absence", "victim"):
            assert word not in lowered, f"{part} says {word!r}"


@pytest.mark.parametrize("n", ALL, ids=_ids)
def test_every_email_says_who_why_what_to_do_and_the_footer(n):
    subject, text, html = render_email(n)
    assert subject and "\n" not in subject
    assert FOOTER in text and FOOTER in html
    for item in n.items:  # a digest lists every item
        assert item.person_name in text
        assert item.link in text and f'href="{item.link}"' in html
        if n.kind != "conversation_request":
            assert item.title in text
            assert item.severity.capitalize() in text
    if n.kind == "conversation_request":
        assert "asked for a welfare conversation" in text
        assert "Open their page to record the conversation." in text
    else:
        assert "welfare conversation" in text.lower()
        assert "see why and record the conversation." in text
    if n.recipient_name:
        assert text.startswith(f"Hello {n.recipient_name},")
    _assert_well_formed(html)


def test_every_card_validates(validate_cards):
    cards = [render_card(n) for n in ALL]
    problems = validate_cards(cards)
    bad = {_ids(n): p for n, p in zip(ALL, problems, strict=True) if p}
    assert bad == {}
    for n, card in zip(ALL, cards, strict=True):
        assert card["version"] == CARD_VERSION
        urls = _urls(card)
        assert {item.link for item in n.items} <= set(urls)
        assert all(url.startswith("https://tracker.force.example/") for url in urls)
        text = json.dumps(card)
        assert f"Ref: {KEY}" in text and FOOTER in text
        assert len(text.encode()) < 28_000  # Teams' limit for one message


def test_the_validator_rejects_what_teams_would_not_show(validate_cards):
    card = render_card(ALL[0])
    newer = {**card, "body": [*card["body"], {"type": "Table", "columns": []}]}
    no_url = {**card, "actions": [{"type": "Action.OpenUrl", "title": "Open the alert"}]}
    typo = {**card, "body": [{"type": "TextBlock", "txt": "misspelt"}]}
    wrong_version = {**card, "version": "1.6"}
    problems = validate_cards([card, newer, no_url, typo, wrong_version])
    assert problems[0] == []
    assert any("Table" in p for p in problems[1])
    assert any("url" in p for p in problems[2])
    assert any("txt" in p for p in problems[3])
    assert any("version" in p for p in problems[4])


def _digest(count: int) -> Notification:
    many = tuple(
        Item(
            n,
            f"Person {chr(65 + n % 26)}{chr(65 + n // 26 % 26)} Lastname",
            TITLE,
            "medium",
            f"https://tracker.force.example/alerts/{n}",
        )
        for n in range(count)
    )
    return Notification(KEY, "digest", "teams", "sergeant@force.example", "Sgt Jo", many)


def test_a_long_digest_lists_everyone_within_the_size_limit(validate_cards):
    n = _digest(60)
    card = render_card(n)
    assert validate_cards([card]) == [[]]
    assert len(json.dumps(card).encode()) < 28_000
    assert set(_urls(card)) == {item.link for item in n.items}
    assert "More are waiting" not in json.dumps(card)


def test_a_digest_too_long_for_one_card_says_more_are_waiting(validate_cards):
    n = _digest(400)
    card = render_card(n)
    assert validate_cards([card]) == [[]]
    size = len(json.dumps(card, separators=(",", ":")).encode())
    assert 20_000 < size <= 27_000  # filled, and within Teams' limit with the envelope
    urls = _urls(card)
    assert urls[-1] == "https://tracker.force.example/alerts"  # "More are waiting: ..."
    shown = urls[:-1]
    assert len(shown) > 50 and shown == [item.link for item in n.items[: len(shown)]]
    # The email has no such limit: it lists everyone.
    _subject, text, _html = render_email(n)
    assert all(item.person_name in text and item.link in text for item in n.items)


def test_card_text_from_names_is_never_read_as_markdown():
    hostile = "[Click me](https://evil.example) **Bold** <at>Boss</at>"
    n = Notification(
        KEY,
        "alert",
        "teams",
        "sergeant@force.example",
        "Sgt [x](https://evil.example)",
        (
            Item(
                1, hostile, "Title *with* _marks_", "low", "https://tracker.force.example/alerts/1"
            ),
        ),
    )
    card = render_card(n)
    # Names and titles only ever in TextRuns (shown as written) or action titles (plain).
    for block in _blocks(card, "TextBlock"):
        assert "evil.example" not in block["text"] and "Title" not in block["text"]
    runs = [run["text"] for block in _blocks(card, "RichTextBlock") for run in block["inlines"]]
    assert hostile in runs
    mention = card["msteams"]["entities"][0]
    assert mention["text"] == "<at>Sgt x https evil example</at>"
    assert mention["mentioned"]["id"] == "sergeant@force.example"


def test_no_mention_without_an_address():
    n = Notification(KEY, "alert", "teams", "S0042", "Sgt Jo", items_for(1, "high"))
    card = render_card(n)
    assert "msteams" not in card
    assert not any("<at>" in b["text"] for b in _blocks(card, "TextBlock"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "memo"}, "kind"),
        ({"items": ()}, "items"),
        ({"items": (Item(1, "A", "T", "urgent", "https://x.example/alerts/1"),)}, "severity"),
        ({"items": (Item(1, "A", "T", "low", "/alerts/1"),)}, "link"),
        ({"items": (Item(1, "A", "T", "low", "javascript:alert(1)"),)}, "link"),
        ({"items": (Item(1, " ", "T", "low", "https://x.example/alerts/1"),)}, "person_name"),
    ],
)
def test_what_cannot_be_rendered_is_named(change, field):
    base = dict(
        key=KEY,
        kind="alert",
        channel="email",
        address="a@force.example",
        recipient_name=None,
        items=items_for(1, "low"),
    )
    n = Notification(**{**base, **change})
    with pytest.raises(RenderError, match=field):
        render_email(n)
    with pytest.raises(RenderError, match=field):
        render_card(n)


def test_names_line_has_no_counts():
    assert names_line(items_for(1, "low")) == "Alex Morgan"
    assert names_line(items_for(2, "low")) == "Alex Morgan and Sam O'Neil"
    assert names_line(items_for(3, "low")) == "Alex Morgan, Sam O'Neil and Priya Shah-Jones"
    assert names_line(items_for(12, "low")) == (
        "Alex Morgan, Sam O'Neil, Priya Shah-Jones and others"
    )


class _Balance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


class _Visible(HTMLParser):
    """The text a reader of the HTML sees, and where its links go."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("head", "style", "script"):
            self._hidden += 1
        self.seen += [value for name, value in attrs if name == "href" and value]

    def handle_endtag(self, tag):
        if tag in ("head", "style", "script"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.seen.append(data)


def _assert_well_formed(html: str) -> None:
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert parser.open == []
    assert html.lstrip().startswith("<!DOCTYPE html>")


def _blocks(node, kind: str) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if node.get("type") == kind:
            found.append(node)
        for value in node.values():
            found += _blocks(value, kind)
    elif isinstance(node, list):
        for value in node:
            found += _blocks(value, kind)
    return found


def _urls(card: dict) -> list[str]:
    return [action["url"] for action in _blocks(card, "Action.OpenUrl")]
