"""Tables the web app writes: the access log, conversation requests, alert assignments."""

from __future__ import annotations
