"""Tables for delivering notifications (channel health, digests); the outbox is in models.rules."""

from __future__ import annotations
