"""Notification channels over a small base, and the outbox dispatcher."""
