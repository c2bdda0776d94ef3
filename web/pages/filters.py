"""Template helpers: times shown in Europe/London, numbers and labels in plain words."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from engine.people.access_log import REASON_LABELS
from engine.sqltime import LONDON, read_datetime
from web import auth, db
from web.forms import OUTCOME_LABELS
from web.pages import charts

CHANNEL_NAMES = {"teams": "Microsoft Teams", "email": "email"}
TIER_NAMES = {1: "Tier 1", 2: "Tier 2", 3: "Tier 3 (most serious)"}


def _moment(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return read_datetime(value).astimezone(LONDON)


def london_date(value) -> str:
    """2 December 2026"""
    moment = _moment(value)
    return f"{moment.day} {moment:%B %Y}" if moment else ""


def london_time(value) -> str:
    """2 December 2026 at 2:05pm"""
    moment = _moment(value)
    if moment is None:
        return ""
    hour = moment.hour % 12 or 12
    return f"{london_date(moment)} at {hour}:{moment:%M}{'am' if moment.hour < 12 else 'pm'}"


def number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{int(value)}"
    return str(value)


def words(value: str | None) -> str:
    """A code such as first_on_scene as words: 'first on scene'."""
    return (value or "").replace("_", " ")


def register(app: Flask) -> None:
    app.jinja_env.filters.update(
        london_date=london_date,
        london_time=london_time,
        number=number,
        words=words,
        outcome_label=lambda v: OUTCOME_LABELS.get(v, words(v)),
        reason_label=lambda v: REASON_LABELS.get(v, words(v)),
        tier_name=lambda v: TIER_NAMES.get(v, f"Tier {v}"),
        channel_name=lambda v: CHANNEL_NAMES.get(v, v),
        split_last_year=charts.split_last_year,
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _user():
        from web.pages import nav

        user = auth.current_user()
        return {"current_user": user, "navigation": nav.items(user), "now": db.now()}
