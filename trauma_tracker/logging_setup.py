"""Logs as JSON lines on stderr (python-json-logger), for the service commands.

What is logged carries ids and counts only: job names, staff ids, alert and outbox ids,
feeds, file names, durations. Never a name, an incident's details, health or absence
detail. A SQL error is logged without its bound parameters (they could hold any of those).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import sqlalchemy as sa
from pythonjsonlogger.json import JsonFormatter

FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _PrivateFormatter(JsonFormatter):
    """JSON, in UTC, with SQL parameters hidden from any exception it renders."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        error = ei[1] if ei else None
        while error is not None:
            if isinstance(error, sa.exc.StatementError):
                error.hide_parameters = True
            error = error.__cause__ or error.__context__
        return super().formatException(ei)


def _still_running(record: logging.LogRecord) -> bool:
    return not (
        record.name.startswith("apscheduler")
        and "maximum number of running instances reached" in record.getMessage()
    )


def json_formatter() -> logging.Formatter:
    formatter = _PrivateFormatter(
        FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    formatter.converter = time.gmtime
    return formatter


def configure(level: str | int = "INFO", stream: Any = None) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) as JSON lines; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_trauma_tracker", False):
            root.removeHandler(existing)
    handler._trauma_tracker = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler says "Running job ..." every few seconds: its warnings and errors only, and
    # not that a poll was skipped because the last one is still ingesting (it runs again).
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    handler.addFilter(_still_running)
    return handler
