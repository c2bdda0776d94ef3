"""What a notification says: the email (subject, text, HTML) and the Teams Adaptive Card.

The words are for a tired sergeant at the end of a shift: plain, kind, short, and they say what
to do. They carry the minimum (DESIGN.md, Delivery): the person's name, that a welfare
conversation is suggested, the rule's title, the severity and a link. Nothing else of the
notification is ever rendered: `extra`, the follow-up label and the alert id stay out (the
alert id only as part of the link).

Email text lives in template files (templates/KIND.subject.txt, KIND.txt, KIND.html; the HTML
is autoescaped). The card is built here: its values go into TextRun elements, which Teams shows
as written (a TextBlock would read a name as markdown, so a name like "[x](https://...)"
would become a link).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notifications.base import Item, Notification

KINDS = ("alert", "digest", "escalation", "follow_up", "conversation_request")
SEVERITIES = ("low", "medium", "high")
CARD_VERSION = "1.4"  # what Teams renders everywhere, Workflows' "Post card" included
FOOTER = (
    "This is a conversation starter, not a diagnosis; it must never be used for discipline, "
    "performance or promotion decisions."
)
# A card with more items than this lists them one line each, the line being the link, so that
# a long digest stays within Teams' message size (about 28 KB; CARD_MAX_BYTES leaves room for
# the envelope).
CARD_FULL_ITEMS = 10
CARD_MAX_BYTES = 27_000
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_SEVERITY_COLOUR = {"high": "Attention", "medium": "Warning", "low": "Default"}

# Per kind: the card's heading, how an item's line starts, what the button says, what to do.
_WORDS: dict[str, dict[str, str]] = {
    "alert": {
        "heading": "Welfare conversation suggested",
        "lead": "Welfare conversation suggested for ",
        "button": "Open the alert",
        "todo": "Open the alert to see why and record the conversation.",
    },
    "digest": {
        "heading": "Welfare conversations suggested",
        "lead": "Welfare conversation suggested for ",
        "button": "Open the alert",
        "todo": "Open each alert to see why and record the conversation.",
    },
    "escalation": {
        "heading": "No welfare conversation recorded yet",
        "lead": "No conversation recorded yet for ",
        "button": "Open the alert",
        "todo": (
            "Please check in with their supervisor or arrange the conversation. "
            "Open the alert to see why and record the conversation."
        ),
    },
    "follow_up": {
        "heading": "Reminder: welfare conversation",
        "lead": "Reminder for ",
        "button": "Open the alert",
        "todo": (
            "If you have had the conversation, please record it on the alert. "
            "If not, now is a good time. Open the alert to see why and record the conversation."
        ),
    },
    "conversation_request": {
        "heading": "Welfare conversation requested",
        "lead": "",
        "button": "Open their page",
        "todo": (
            "Please get in touch with them soon, kindly and in private. "
            "Open their page to record the conversation."
        ),
    },
}


class RenderError(ValueError):
    """A notification that can't be rendered; the message names the field."""


_env = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def check(n: Notification) -> None:
    """Raise RenderError naming the field when `n` can't be rendered as it is."""
    if n.kind not in KINDS:
        raise RenderError(f"kind: {n.kind!r} is not one of {', '.join(KINDS)}")
    if not n.items:
        raise RenderError(f"items: a {n.kind} message needs at least one item")
    for number, item in enumerate(n.items, 1):
        where = f"items[{number}]"
        if item.severity not in SEVERITIES:
            raise RenderError(f"{where}.severity: {item.severity!r} is not low, medium or high")
        if not item.person_name.strip():
            raise RenderError(f"{where}.person_name: empty")
        if not item.title.strip():
            raise RenderError(f"{where}.title: empty")
        parts = urlsplit(item.link)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RenderError(
                f"{where}.link: not an absolute http(s) link (set TT_BASE_URL): {item.link!r}"
            )


def names_line(items: tuple[Item, ...], most: int = 3) -> str:
    """'A', 'A and B', 'A, B and C', or 'A, B, C and others' (names once each, no counts)."""
    names = list(dict.fromkeys(_one_line(item.person_name) for item in items))
    if len(names) > most:
        return ", ".join(names[:most]) + " and others"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _one_line(text: str) -> str:
    """`text` on one line: a name or title never breaks a header or a line of its own."""
    return " ".join(text.split())


def _context(n: Notification) -> dict[str, Any]:
    return {
        "kind": n.kind,
        "recipient_name": _one_line(n.recipient_name) if n.recipient_name else None,
        "items": [
            {
                "name": _one_line(item.person_name),
                "title": _one_line(item.title),
                "severity": item.severity.capitalize(),
                "link": item.link,
            }
            for item in n.items
        ],
        "names": names_line(n.items),
        "todo": _WORDS[n.kind]["todo"],
        "footer": FOOTER,
    }


def render_email(n: Notification) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of `n` from the template files for its kind."""
    check(n)
    context = _context(n)
    subject = _one_line(_env.get_template(f"{n.kind}.subject.txt").render(context))
    # Blank lines from template tags collapse to one, so the text reads as written.
    text = re.sub(r"\n{3,}", "\n\n", _env.get_template(f"{n.kind}.txt").render(context))
    text = text.strip() + "\n"
    html = _env.get_template(f"{n.kind}.html").render(context)
    return subject, text, html


def _mention_name(name: str | None) -> str | None:
    """A name fit for `<at>...</at>` (read as markdown by Teams): letters, spaces, - and '."""
    if not name:
        return None
    plain = _one_line(re.sub(r"[^\w '\-]|_", " ", name))
    return plain or None


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _open(title: str, link: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": link}


def _item_line(kind: str, item: Item) -> dict[str, Any]:
    """One line: who, and why (the rule's title), as runs Teams shows as written."""
    name = _run(_one_line(item.person_name), weight="Bolder")
    if kind == "conversation_request":
        inlines = [name, _run(" has asked for a welfare conversation.")]
    else:
        inlines = [_run(_WORDS[kind]["lead"]), name, _run(": " + _one_line(item.title))]
    return {"type": "RichTextBlock", "inlines": inlines}


def _short_line(kind: str, item: Item) -> dict[str, Any]:
    """The line of a long list, as small as it can be: the whole line is the link."""
    text = _one_line(item.person_name)
    if kind != "conversation_request":
        text += f": {_one_line(item.title)} ({item.severity.capitalize()})"
    return {"type": "RichTextBlock", "inlines": [_run(text, selectAction=_url(item.link))]}


def _url(link: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "url": link}


def _size(part: Any) -> int:
    return len(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode())


def _long_list(kind: str, items: tuple[Item, ...], budget: int) -> list[dict[str, Any]]:
    """Each item on a line of its own, as many as fit in `budget` bytes; when some don't, a
    last line says more are waiting and links to the alerts page (the email lists them all)."""
    lines: list[dict[str, Any]] = []
    more = {
        "type": "RichTextBlock",
        "inlines": [
            _run(
                "More are waiting: open your alerts to see them all.",
                weight="Bolder",
                selectAction=_url(_alerts_page(items[0].link)),
            )
        ],
    }
    room = budget - _size(more)
    for item in items:
        line = _short_line(kind, item)
        room -= _size(line) + 1
        if room < 0:
            return [*lines, more]
        lines.append(line)
    return lines


def _alerts_page(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}/alerts"


def _severity(item: Item) -> dict[str, Any]:
    return {
        "type": "TextBlock",
        "text": f"Severity: {item.severity.capitalize()}",
        "color": _SEVERITY_COLOUR[item.severity],
        "weight": "Bolder",
        "spacing": "Small",
        "wrap": True,
    }


def render_card(n: Notification) -> dict[str, Any]:
    """The Adaptive Card (version CARD_VERSION) for `n`: the `content` of the attachment.

    It says who needs a welfare conversation and why in one line per item, the severity, a
    button to the alert, what to do, the footer, and "Ref: KEY" (the idempotency key, so a
    copy sent twice after a crash can be recognised). When the address is an email address
    the recipient is @mentioned (`msteams.entities`, by UPN): Teams notifies them, and a flow
    can read the address from there to post in a chat with them.
    """
    check(n)
    words = _WORDS[n.kind]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": words["heading"],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "fallbackText": f"{words['heading']}: {names_line(n.items)}",
        "body": body,
    }
    mention = _mention_name(n.recipient_name) if "@" in n.address else None
    if mention:
        body.append({"type": "TextBlock", "text": f"Hello <at>{mention}</at>,", "wrap": True})
        card["msteams"] = {
            "entities": [
                {
                    "type": "mention",
                    "text": f"<at>{mention}</at>",
                    "mentioned": {"id": n.address, "name": mention},
                }
            ]
        }
    ending: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": words["todo"], "wrap": True, "spacing": "Medium"},
        {
            "type": "TextBlock",
            "text": FOOTER,
            "size": "Small",
            "isSubtle": True,
            "wrap": True,
            "separator": True,
        },
        {
            "type": "RichTextBlock",
            "id": "ref",
            "inlines": [_run(f"Ref: {n.key}", size="Small", isSubtle=True)],
        },
    ]
    if len(n.items) == 1:
        item = n.items[0]
        body.append(_item_line(n.kind, item))
        if n.kind != "conversation_request":
            body.append(_severity(item))
        card["actions"] = [_open(words["button"], item.link)]
    elif len(n.items) <= CARD_FULL_ITEMS:
        for item in n.items:
            parts: list[dict[str, Any]] = [_item_line(n.kind, item)]
            if n.kind != "conversation_request":
                parts.append(_severity(item))
            button = f"{words['button']} for {_one_line(item.person_name)}"
            parts.append({"type": "ActionSet", "actions": [_open(button, item.link)]})
            body.append({"type": "Container", "separator": True, "items": parts})
    else:
        budget = CARD_MAX_BYTES - _size(card) - _size(ending)
        body += _long_list(n.kind, n.items, budget)
    body += ending
    return card
