"""The Prometheus metrics the scheduler's jobs record (prometheus-client).

Under `run` and `serve`, PROMETHEUS_MULTIPROC_DIR names a folder every process writes its
values to, and /metrics (web.metrics) adds them up across the scheduler and the web workers.
What the database knows better (the oldest pending notification, each source's last
success) /metrics reads from the database when scraped.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

ROWS_INGESTED = Counter("tt_rows_ingested", "Feed rows accepted by ingest.", ["feed"])
ROWS_REJECTED = Counter("tt_rows_rejected", "Feed rows quarantined by ingest.", ["feed"])
INGEST_SECONDS = Histogram(
    "tt_ingest_duration_seconds",
    "Time to ingest one file or page.",
    ["feed"],
    buckets=DURATION_BUCKETS,
)
EVALUATION_SECONDS = Histogram(
    "tt_evaluation_duration_seconds", "Time of one evaluation.", buckets=DURATION_BUCKETS
)
DECISIONS = Counter("tt_decisions", "Rule decisions recorded in the decision log.")
ALERTS_OPENED = Counter("tt_alerts_opened", "Alerts opened.", ["rule", "severity"])
NOTIFICATIONS_SENT = Counter("tt_notifications_sent", "Notifications sent.", ["channel"])
NOTIFICATIONS_FAILED = Counter(
    "tt_notifications_failed", "Notification attempts that failed.", ["channel"]
)
JOB_RUNS = Counter("tt_job_runs", "Scheduler job runs.", ["job", "outcome"])
JOB_SECONDS = Histogram(
    "tt_job_duration_seconds",
    "Time of one scheduler job run.",
    ["job"],
    buckets=DURATION_BUCKETS,
)
SCHEDULER_LOCK = Gauge(
    "tt_scheduler_lock_held",
    "1 while this instance's scheduler holds the scheduler lock, else 0.",
    multiprocess_mode="livemax",
)
