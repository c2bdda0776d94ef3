"""Geometry for the oversight pages' SVG charts, drawn on the server (no script).

Grouped bars (a backtest's alerts per month, one colour per rule) and a heatmap (the
overview's rates per unit and month). Colours are attributes of the SVG shapes, which the
Content-Security-Policy allows (no style attribute); each chart has a table of the same
figures beside it, which is what a screen reader reads.
"""

from __future__ import annotations

from datetime import date

from web.pages.charts import BOTTOM, HEIGHT, LEFT, TOP, WIDTH

# GOV.UK Frontend colours with at least 3:1 contrast against white (WCAG 1.4.11).
SERIES_COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#4c2c92", "#912b88", "#505a5f", "#0b0c0c")
# The heatmap's steps, light to dark (GOV.UK blue tints), and the text colour on each.
HEAT = (
    ("#f3f8fc", "#0b0c0c"),
    ("#d2e2f1", "#0b0c0c"),
    ("#8eb8dc", "#0b0c0c"),
    ("#4a8dc8", "#0b0c0c"),
    ("#1d70b8", "#ffffff"),
    ("#003078", "#ffffff"),
)
SUPPRESSED_FILL = "#ffffff"


def nice_top(largest: float) -> float:
    """A round axis maximum at or above `largest`."""
    for top in (1, 2, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50, 100, 150, 200, 250, 500, 1000):
        if largest <= top:
            return top
    return largest


def month_label(key: str) -> str:
    """2025-06 -> Jun 2025"""
    year, month = (int(part) for part in key.split("-"))
    return date(year, month, 1).strftime("%b %Y")


def bars(groups: list[str], series: list[tuple[str, list[int]]], labels=None) -> dict:
    """Grouped bars: for each group (a month), one bar per series (a rule).

    `series` is [(label, [value per group])]; `labels` the groups' axis labels.
    """
    labels = labels or groups
    top = nice_top(max((v for _, values in series for v in values), default=0) or 1)
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(groups), 1)
    inner = slot * 0.8
    width = inner / max(len(series), 1)
    every = max(1, len(groups) // 12)  # no more than about 12 labels along the axis
    drawn = []
    for index in range(len(groups)):
        x0 = LEFT + index * slot + (slot - inner) / 2
        group_bars = []
        for number, (_, values) in enumerate(series):
            height = plot_height * values[index] / top
            group_bars.append(
                {
                    "x": round(x0 + number * width, 2),
                    "y": round(HEIGHT - BOTTOM - height, 2),
                    "w": round(width, 2),
                    "h": round(height, 2),
                    "colour": SERIES_COLOURS[number % len(SERIES_COLOURS)],
                }
            )
        drawn.append(
            {
                "x": round(x0 + inner / 2, 2),
                "label": labels[index],
                "show_label": index % every == 0,
                "bars": group_bars,
            }
        )
    step = max(1, int(top // 4))
    ticks = [
        {"value": value, "y": round(HEIGHT - BOTTOM - plot_height * value / top, 2)}
        for value in range(0, int(top) + 1, step)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "base": HEIGHT - BOTTOM,
        "label_y": HEIGHT - BOTTOM + 20,
        "ticks": ticks,
        "groups": drawn,
        "series": [
            {"label": label, "colour": SERIES_COLOURS[n % len(SERIES_COLOURS)]}
            for n, (label, _) in enumerate(series)
        ],
    }


def heatmap(rows: list[dict], months: list[str], value_key: str) -> dict:
    """A grid: one row per unit (`rows` are the overview's trend rows), one column per month,
    each cell shaded by `value_key` (per person); suppressed rows drawn blank and marked."""
    name_width, cell_w, cell_h, head = 190, 44, 26, 30
    values = [m[value_key] for row in rows for m in row["months"] if m[value_key] is not None]
    largest = max(values, default=0) or 1
    cells = []
    for r, row in enumerate(rows):
        y = head + r * cell_h
        for c, month in enumerate(row["months"]):
            value = month[value_key]
            if row["suppressed"] or value is None:
                fill, ink, text = SUPPRESSED_FILL, "#505a5f", "S" if row["suppressed"] else ""
            else:
                step = min(len(HEAT) - 1, int(value / largest * (len(HEAT) - 1) + 0.5))
                fill, ink = HEAT[step]
                text = f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"
            cells.append(
                {
                    "x": name_width + c * cell_w,
                    "y": y,
                    "w": cell_w - 2,
                    "h": cell_h - 2,
                    "fill": fill,
                    "ink": ink,
                    "text": text,
                    "tx": name_width + c * cell_w + (cell_w - 2) / 2,
                    "ty": y + cell_h / 2 + 3,
                }
            )
    return {
        "width": name_width + len(months) * cell_w + 4,
        "height": head + len(rows) * cell_h + 4,
        "name_width": name_width,
        "columns": [
            {"x": name_width + c * cell_w + (cell_w - 2) / 2, "label": month_label(m)[:3]}
            for c, m in enumerate(months)
        ],
        "rows": [
            {"y": head + r * cell_h + cell_h / 2 + 4, "name": row["name"][:28]}
            for r, row in enumerate(rows)
        ],
        "cells": cells,
        "largest": largest,
        "steps": [
            {"fill": fill, "ink": ink, "from": round(largest * i / (len(HEAT) - 1), 2)}
            for i, (fill, ink) in enumerate(HEAT)
        ],
    }
