"""Health checks (CONTRACT section 3): /healthz while the process is up; /readyz when the
database answers, a valid ruleset loads and the scheduler's intake and dispatch have succeeded
recently (TT_SCHEDULER_STALE_SECONDS), else 503 saying which."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, jsonify

from engine.oversight.service_runs import scheduler_health
from engine.yamlfile import RuleFileError
from web import db
from web.auth import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public("liveness probe")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
@public("readiness probe")
def readyz():
    """{"status", "checks": {"database", "criteria", "ruleset", "scheduler"}}: each "ok" or
    what is wrong (no connection details or file contents beyond the file and line). A
    database no scheduler has run against counts as ok for the scheduler, so `serve` on its
    own is ready."""
    checks: dict[str, str] = {}
    try:
        with db.engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            stale_after = timedelta(seconds=db.settings().scheduler_stale_seconds)
            health = scheduler_health(conn, datetime.now(UTC), stale_after)
        checks["database"] = "ok"
        checks["scheduler"] = "ok" if health["ok"] else "; ".join(health["problems"])
    except sa.exc.SQLAlchemyError as error:
        checks["database"] = f"not answering: {type(error.orig or error).__name__}"
    try:
        db.criteria()
        checks["criteria"] = "ok"
    except RuleFileError as error:
        checks["criteria"] = "invalid: " + "; ".join(str(p) for p in error.problems[:3])
    if checks["database"] == "ok":
        try:
            db.rule_pack()
            checks["ruleset"] = "ok"
        except RuleFileError as error:
            checks["ruleset"] = "no valid ruleset: " + "; ".join(str(p) for p in error.problems[:3])
    else:
        checks["ruleset"] = "not checked: the database is not answering"
        checks["scheduler"] = "not checked: the database is not answering"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
