"""Rule effectiveness from recorded outcomes, for the steering group.

For each rule, over the alerts it opened in a period (London dates, both ends included):
how many opened, how many were acknowledged, the median time to the first response
(acknowledgement, or resolution for an alert resolved without being acknowledged first),
the recorded outcomes by code, and the share of recorded outcomes that were
`false_positive`. Alerts of people who have since opted out are gone (engine.people.opt_out), so
they are not counted; the figures carry no person's identity.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from engine.alerts.lifecycle import OUTCOMES
from engine.sqltime import LONDON, read_datetime
from models import Alert, table_of

alerts_t = table_of(Alert)


class PeriodError(ValueError):
    """A period that runs backwards, naming the field."""


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC moments from the start of `start` to the end of `end`, London time."""
    if end < start:
        raise PeriodError(f"to: {end.isoformat()} is before from: {start.isoformat()}")
    first = datetime.combine(start, time(0), LONDON)
    after = datetime.combine(end + timedelta(days=1), time(0), LONDON)
    return first, after


def effectiveness(
    engine: sa.Engine,
    start: date,
    end: date,
    rules: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Per rule, what its alerts of the period came to; `rules` ((id, title) of the running
    pack) are listed even when they opened nothing."""
    first, after = period_bounds(start, end)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                alerts_t.c.rule_id,
                alerts_t.c.title,
                alerts_t.c.opened_at,
                alerts_t.c.acknowledged_at,
                alerts_t.c.resolved_at,
                alerts_t.c.outcome,
            ).where(alerts_t.c.opened_at >= first, alerts_t.c.opened_at < after)
        ).all()
    titles = dict(rules)
    by_rule: dict[str, list[Any]] = {rule_id: [] for rule_id in titles}
    for row in rows:
        by_rule.setdefault(row.rule_id, []).append(row)
        titles.setdefault(row.rule_id, row.title)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "rules": [_rule(rule_id, titles[rule_id], by_rule[rule_id]) for rule_id in sorted(by_rule)],
    }


def _rule(rule_id: str, title: str, rows: list[Any]) -> dict[str, Any]:
    waits = []
    outcomes: Counter = Counter()
    acknowledged = 0
    for row in rows:
        opened = read_datetime(row.opened_at)
        responded = read_datetime(row.acknowledged_at) or read_datetime(row.resolved_at)
        if row.acknowledged_at is not None:
            acknowledged += 1
        if responded is not None:
            waits.append((responded - opened).total_seconds() / 3600)
        if row.outcome:
            outcomes[row.outcome] += 1
    recorded = sum(outcomes.values())
    return {
        "rule_id": rule_id,
        "title": title,
        "opened": len(rows),
        "acknowledged": acknowledged,
        "resolved": sum(1 for row in rows if row.resolved_at is not None),
        "median_hours_to_acknowledge": round(statistics.median(waits), 1) if waits else None,
        "outcomes": {**dict.fromkeys(OUTCOMES, 0), **outcomes},
        "false_positive_share": (
            round(outcomes.get("false_positive", 0) / recorded, 3) if recorded else None
        ),
    }
