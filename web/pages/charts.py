"""Exposure by month, as figures for a table and geometry for an SVG drawn on the server.

No script draws anything: the template writes the SVG from these numbers, and the same
numbers fill the table beside it (the chart's text alternative).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.sqltime import LONDON

MONTHS = 12
TIERS = (1, 2, 3)
# Drawing area in SVG units; the SVG scales to its container.
WIDTH, HEIGHT = 640, 240
LEFT, BOTTOM, TOP = 40, 40, 10


def _month_key(moment: datetime) -> tuple[int, int]:
    local = moment.astimezone(LONDON)
    return local.year, local.month


def by_month(exposures: list[dict], now: datetime, months: int = MONTHS) -> list[dict]:
    """The last `months` calendar months (London), oldest first: each with its exposure count
    per tier and in total. `exposures` is engine.people.own_record's list."""
    year, month = _month_key(now)
    keys = []
    for _ in range(months):
        keys.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    keys.reverse()
    counts = {key: dict.fromkeys(TIERS, 0) for key in keys}
    for item in exposures:
        moment = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        key = _month_key(moment)
        if key in counts and item["tier"] in counts[key]:
            counts[key][item["tier"]] += 1
    return [
        {
            "key": f"{y:04d}-{m:02d}",
            "label": datetime(y, m, 1).strftime("%b %Y"),
            "short": datetime(y, m, 1).strftime("%b"),
            "tiers": counts[(y, m)],
            "total": sum(counts[(y, m)].values()),
        }
        for y, m in keys
    ]


def split_last_year(exposures: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
    """The exposures of the last 12 months, and the older ones (each newest first): a busy
    officer's five years is a long list, so the page opens the older ones on request."""
    cutoff = now - timedelta(days=365)
    recent = [
        e for e in exposures if datetime.fromisoformat(e["at"].replace("Z", "+00:00")) > cutoff
    ]
    return recent, exposures[len(recent) :]


def _nice_top(largest: int) -> int:
    for top in (2, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50, 100):
        if largest <= top:
            return top
    return largest


def month_chart(months: list[dict]) -> dict:
    """Bars stacked by tier (tier 1 at the bottom), axis ticks and labels, in SVG units."""
    top = _nice_top(max((m["total"] for m in months), default=0) or 1)
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / len(months)
    bar_width = slot * 0.6
    bars = []
    for index, month in enumerate(months):
        x = LEFT + index * slot + (slot - bar_width) / 2
        y = HEIGHT - BOTTOM
        segments = []
        for tier in TIERS:
            count = month["tiers"][tier]
            if not count:
                continue
            height = plot_height * count / top
            y -= height
            segments.append(
                {"tier": tier, "count": count, "x": x, "y": y, "w": bar_width, "h": height}
            )
        bars.append(
            {"label": month["short"], "x": x + bar_width / 2, "segments": segments, "month": month}
        )
    step = max(1, top // 4)
    ticks = [
        {"value": value, "y": HEIGHT - BOTTOM - plot_height * value / top}
        for value in range(0, top + 1, step)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "base": HEIGHT - BOTTOM,
        "bars": bars,
        "ticks": ticks,
        "label_y": HEIGHT - BOTTOM + 20,
    }
