"""GET /metrics: the jobs' counters and what the database says, in Prometheus text format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from engine.oversight import service_runs
from models import OutboxMessage, table_of
from tests.service.drops import write_exposure, write_team
from trauma_tracker import metrics
from trauma_tracker.jobs import Jobs
from trauma_tracker.settings import Settings


def _scrape(settings: Settings) -> dict[str, list]:
    from web import create_app

    app = create_app(
        Settings(**{**settings.__dict__, "secret_key": "metrics test key"}), testing=True
    )
    try:
        response = app.test_client().get("/metrics")
    finally:
        app.extensions["tt"].dispose()
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {family.name: family.samples for family in families}


def _value(samples, **labels) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_intake_and_read_the_database(settings, service_db, drop_dir):
    _, engine = service_db
    before = _value(_scrape(settings).get("tt_rows_ingested", []), feed="cc_deployments")
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-3")
    jobs = Jobs(settings, engine)
    jobs.guarded("intake", jobs.intake)()
    metrics.SCHEDULER_LOCK.set(1)

    scraped = _scrape(settings)

    assert _value(scraped["tt_rows_ingested"], feed="cc_deployments") == before + 1
    assert _value(scraped["tt_alerts_opened"], rule="trim-check", severity="high") >= 1
    assert _value(scraped["tt_scheduler_lock_held"]) == 1
    assert scraped["tt_evaluation_duration_seconds"]
    [source] = scraped["tt_source_last_success_timestamp_seconds"]
    assert source.labels == {"source": str(drop_dir)}
    assert abs(source.value - datetime.now(UTC).timestamp()) < 120
    jobs_seen = {s.labels["job"] for s in scraped["tt_job_last_success_timestamp_seconds"]}
    assert {"intake", "evaluate"} <= jobs_seen
    # The supervisor's notifications are waiting: their age is counted from when due.
    outbox = table_of(OutboxMessage)
    with engine.begin() as conn:
        conn.execute(outbox.update().values(due_at=datetime.now(UTC) - timedelta(minutes=10)))
    [oldest] = _scrape(settings)["tt_outbox_oldest_pending_age_seconds"]
    assert 590 < oldest.value < 900
    metrics.SCHEDULER_LOCK.set(0)


def test_metrics_carry_no_personal_data(settings, service_db, drop_dir):
    _, engine = service_db
    write_team(drop_dir)
    write_exposure(drop_dir, "INC-4")
    Jobs(settings, engine).intake()
    service_runs.record_success(engine, "dispatch", "job", datetime.now(UTC), "host:1")
    text = "\n".join(
        f"{name} {sample.labels}"
        for name, samples in _scrape(settings).items()
        for sample in samples
    )
    for word in ("S1", "S2", "Alex", "Sam", "INC-4", "SUDDEN_DEATH"):
        assert word not in text
