"""Notifications for the channel tests: plain ones, and ones full of sentinels."""

from __future__ import annotations

from notifications.base import Item, Notification


def item(n: int = 1, *, name: str = "Alex Morgan", severity: str = "high") -> Item:
    return Item(
        alert_id=n,
        person_name=name,
        title="Sustained exposure with cancelled rest days",
        severity=severity,
        link=f"https://tracker.force.example/alerts/{n}",
    )


def notification(
    kind: str = "alert",
    *,
    items: tuple[Item, ...] | None = None,
    key: str = "tt-outbox-1",
    channel: str = "email",
    address: str = "sergeant@force.example",
    recipient_name: str | None = "Sgt Jo Bloggs",
    extra: dict[str, str] | None = None,
) -> Notification:
    return Notification(
        key=key,
        kind=kind,
        channel=channel,
        address=address,
        recipient_name=recipient_name,
        items=items or (item(),),
        extra=extra or {},
    )
