"""Retention: what is older than its window is purged (the nightly job, DESIGN's Privacy).

- Derived data older than the history (TT_HISTORY_YEARS, default 5): exposures, the marks the
  exposure rules left on them, past snapshots (a person's current snapshot is their live
  state and stays), resolved alerts with their notifications, events and follow-ups, and
  conversation requests with their notifications. An alert still open or acknowledged stays
  however old: someone still has to act on it.
- The access log, after its own window (TT_ACCESS_LOG_YEARS, default the history).
- The decision log, after its own window (TT_DECISION_LOG_YEARS, default the history): what
  each decision saw and why it fired is blanked, as on an opt-out (engine.alerts.audit.erase). The
  entries themselves, their digests and the hash chain stay, so `audit verify` still passes
  and signed checkpoints still match: deleting entries would break the chain by design.

Everything is one transaction: a purge happens whole or not at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from models import (
    AccessLogEntry,
    Alert,
    AlertEvent,
    AlertFollowUp,
    ConversationRequest,
    Decision,
    Exposure,
    ExposureMark,
    OutboxMessage,
    Snapshot,
    table_of,
)


def purge(
    engine: sa.Engine,
    now: datetime,
    *,
    history_days: int,
    access_log_days: int,
    decision_log_days: int,
) -> dict[str, int]:
    """Purge what is past its window as of `now`; returns how many rows went, by kind."""
    for name, days in (
        ("history_days", history_days),
        ("access_log_days", access_log_days),
        ("decision_log_days", decision_log_days),
    ):
        if days < 1:
            raise ValueError(f"{name} must be at least 1 day, not {days}")
    horizon = now - timedelta(days=history_days)
    alerts, outbox = table_of(Alert), table_of(OutboxMessage)
    requests = table_of(ConversationRequest)
    counts: dict[str, int] = {}
    with engine.begin() as conn:

        def delete(name: str, table: sa.Table, *where) -> None:
            counts[name] = counts.get(name, 0) + conn.execute(table.delete().where(*where)).rowcount

        delete("exposures", table_of(Exposure), table_of(Exposure).c.at < horizon)
        delete(
            "exposure_marks",
            table_of(ExposureMark),
            table_of(ExposureMark).c.evaluated_at < horizon,
        )
        snapshots = table_of(Snapshot)
        delete("snapshots", snapshots, snapshots.c.as_of < horizon, ~snapshots.c.is_current)

        old_alerts = sa.select(alerts.c.id).where(
            alerts.c.status == "resolved", alerts.c.resolved_at < horizon
        )
        delete("outbox", outbox, outbox.c.alert_id.in_(old_alerts))
        delete(
            "alert_events", table_of(AlertEvent), table_of(AlertEvent).c.alert_id.in_(old_alerts)
        )
        follow_ups = table_of(AlertFollowUp)
        delete("alert_follow_ups", follow_ups, follow_ups.c.alert_id.in_(old_alerts))
        delete("alerts", alerts, alerts.c.id.in_(old_alerts))
        # Conversation requests and any other message not about an alert, once sent or
        # given up on (a pending one is still to go).
        delete("conversation_requests", requests, requests.c.at < horizon)
        delete(
            "outbox",
            outbox,
            outbox.c.alert_id.is_(None),
            outbox.c.status.in_(("sent", "failed")),
            outbox.c.created_at < horizon,
        )

        access_log = table_of(AccessLogEntry)
        delete("access_log", access_log, access_log.c.at < now - timedelta(days=access_log_days))

        decisions = table_of(Decision)
        counts["decisions_erased"] = conn.execute(
            decisions.update()
            .where(
                decisions.c.recorded_at < now - timedelta(days=decision_log_days),
                decisions.c.erased_at.is_(None),
            )
            .values(input=None, explanation=None, erased_at=now)
        ).rowcount
    return counts
