"""Notification channels over a small base (base.py), and the outbox dispatcher.

Channels by name: `email` (SMTP, smtp.py, or Microsoft Graph, graph.py) and `teams` (a
Workflows webhook, teams.py); trauma_tracker.delivery.transports_from builds them from the
settings. render.py holds what every message says. Channel modules are imported only when
used (they pull in msal, requests), so importing this package costs nothing.
"""

CHANNELS = ("email", "teams")
