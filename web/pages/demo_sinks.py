"""The demo's local mail server and Teams webhook, as an admin reads them in the app.

`trauma-tracker demo` keeps every message its sinks receive in its folder (trauma_tracker/
demo.py): `mail/*.eml` and `teams/*.json`, beside `tracker.sqlite` and a `READY` marker. The
app finds that folder from its database's path, and only with the persona picker on (the
demo's setting); a real deployment never has one.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trauma_tracker.settings import Settings

LIMIT = 50  # newest messages shown of each kind
SQLITE = "sqlite:///"


def folder(settings: Settings) -> Path | None:
    """The demo's folder, or None outside the demo."""
    if not settings.web.dev_login or not settings.database_url.startswith(SQLITE):
        return None
    base = Path(settings.database_url[len(SQLITE) :]).parent
    if not (base / "READY").is_file() or not (base / "mail").is_dir():
        return None
    return base


def _received(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _newest(directory: Path, pattern: str) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob(pattern), key=lambda p: p.name, reverse=True)[:LIMIT]


def mails(base: Path) -> list[dict[str, Any]]:
    """The newest mails: who to, subject, when, and the plain-text part."""
    found = []
    for path in _newest(base / "mail", "*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = "\n".join(
            part.get_content() for part in message.walk() if part.get_content_type() == "text/plain"
        )
        found.append(
            {
                "name": path.name,
                "to": str(message["To"] or ""),
                "subject": str(message["Subject"] or ""),
                "received": _received(path),
                "text": text.strip(),
            }
        )
    return found


def _texts(node: Any) -> list[str]:
    """Every `text` of an Adaptive Card, in order (TextBlocks, TextRuns, facts)."""
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        if isinstance(node.get("title"), str) and node.get("type") == "Action.OpenUrl":
            found.append(f"[{node['title']}] {node.get('url', '')}")
        for key, value in node.items():
            if key not in ("text", "title"):
                found.extend(_texts(value))
        return found
    if isinstance(node, list):
        return [text for item in node for text in _texts(item)]
    return []


def cards(base: Path) -> list[dict[str, Any]]:
    """The newest Teams posts: each card's texts, and when it arrived."""
    found = []
    for path in _newest(base / "teams", "*.json"):
        try:
            body = json.loads(path.read_text())
        except ValueError:
            body = None
        lines = [line.replace("<at>", "").replace("</at>", "") for line in _texts(body)]
        found.append({"name": path.name, "received": _received(path), "lines": lines})
    return found
