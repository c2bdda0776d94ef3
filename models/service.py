"""Tables for running as a service: the scheduler's heartbeat and job runs."""

from __future__ import annotations
