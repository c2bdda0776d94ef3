"""GET /metrics: Prometheus text format (prometheus-client).

Under `run` and `serve` every process (the scheduler and each gunicorn worker) writes its
counters to the folder PROMETHEUS_MULTIPROC_DIR names, and a scrape adds them up across
processes, whichever worker answers. What only the database knows for sure is read from it
at each scrape: the age of the oldest notification waiting to go, and when each job and
each source last succeeded (table `service_runs`, written by the scheduler).

Labels are feeds, rule ids, severities, channels, job and source names: never a person.
The page is public like the health checks; restrict it to the scraper at the proxy.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.oversight import service_runs
from web import db
from web.auth import public

bp = Blueprint("metrics", __name__)


class _DatabaseCollector:
    """What the database says, at the moment of the scrape."""

    def __init__(self, engine: sa.Engine, now: datetime):
        self.engine, self.now = engine, now

    def collect(self):
        oldest = GaugeMetricFamily(
            "tt_outbox_oldest_pending_age_seconds",
            "Seconds since the oldest notification still waiting to go became due.",
        )
        jobs = GaugeMetricFamily(
            "tt_job_last_success_timestamp_seconds",
            "When each scheduler job last succeeded (Unix time).",
            labels=["job"],
        )
        sources = GaugeMetricFamily(
            "tt_source_last_success_timestamp_seconds",
            "When each drop folder or pulled source was last taken in (Unix time).",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "tt_database_up", "1 when the database answered this scrape, else 0."
        )
        try:
            with self.engine.connect() as conn:
                oldest.add_metric([], service_runs.oldest_pending_age(conn, self.now))
                recorded = service_runs.runs(conn)
        except sa.exc.SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for item in recorded:
            if item["last_success_at"] is None:
                continue
            stamp = item["last_success_at"].timestamp()
            if item["kind"] == "source":
                sources.add_metric([item["name"].removeprefix("source:")], stamp)
            else:
                jobs.add_metric([item["name"]], stamp)
        yield from (up, oldest, jobs, sources)


@bp.get("/metrics")
@public("Prometheus scrape (no personal data; restrict it at the proxy)")
def metrics():
    """The metrics of every process of this instance, and the database's."""
    per_process = CollectorRegistry()
    try:
        multiprocess.MultiProcessCollector(per_process)
    except ValueError:  # not under run/serve: this process's own metrics
        per_process = REGISTRY
    from_database = CollectorRegistry()
    from_database.register(_DatabaseCollector(db.engine(), datetime.now(UTC)))
    body = generate_latest(per_process) + generate_latest(from_database)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
