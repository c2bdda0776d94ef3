"""Decisions and alerts: firings explained and hash-chained, alerts and their lifecycle."""
