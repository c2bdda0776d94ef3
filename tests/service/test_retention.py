"""Retention: what is past its window goes; the decision chain still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.alerts import audit
from engine.alerts import lifecycle as alert_ops
from engine.people.retention import purge
from models import (
    AccessLogEntry,
    Alert,
    AlertEvent,
    AlertFollowUp,
    Decision,
    Exposure,
    OutboxMessage,
    Snapshot,
    table_of,
)
from tests.forcedata import Force, deployment, incident, person, utc
from trauma_tracker.settings import Settings, SettingsError

NOW = utc("2026-06-01T12:00:00Z")
KEY = b"retention test key"


def _rows(engine, model, *where):
    table = table_of(model)
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).all()


@pytest.fixture
def force(database_url, rules_dir):
    """S1 (supervised by S2) attended a child's death in 2019, resolved that July, and
    another last week; viewed in 2023 and this week."""
    force = Force(database_url)
    force.add(
        person("S1", supervisor_id="S2", valid_from="2015-01-01"),
        person("S2", valid_from="2015-01-01"),
        incident("INC-OLD", "2019-06-01T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-OLD", "S1", "first_on_scene", "2019-06-01T10:10:00Z"),
        incident("INC-NEW", "2026-05-30T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        deployment("INC-NEW", "S1", "first_on_scene", "2026-05-30T10:10:00Z"),
    )
    force.evaluate("2019-06-02T09:00:00Z", rules_dir=rules_dir)
    old_alerts = [alert.id for alert in _rows(force.engine, Alert)]
    assert old_alerts
    with force.engine.begin() as conn:
        for alert_id in old_alerts:
            alert_ops.resolve(conn, alert_id, "S2", alert_ops.OUTCOMES[0], utc("2019-07-01"))
    force.evaluate(NOW, rules_dir=rules_dir)
    with force.engine.begin() as conn:
        # A scored exposure from before the history, as an older version would have left it.
        conn.execute(
            table_of(Exposure)
            .insert()
            .values(
                staff_id="S2",
                incident_key="cc:INC-ANCIENT",
                feed="cc_incidents",
                ref="INC-ANCIENT",
                role="attending",
                at=utc("2020-01-01"),
                category="knife",
                tier=1,
                points=1,
                criteria_version="old",
                scored_at=utc("2020-01-02"),
            )
        )
        for at in (utc("2023-01-10"), NOW - timedelta(days=2)):
            conn.execute(
                table_of(AccessLogEntry)
                .insert()
                .values(at=at, viewer_id="S2", staff_id="S1", reason="alert_review", what="alert")
            )
        audit.write_checkpoint(conn, KEY, NOW)
    force.old_alert_ids = old_alerts
    yield force
    force.close()


def test_purge_removes_what_is_past_its_window_and_keeps_the_rest(force):
    engine = force.engine
    old = force.old_alert_ids
    kept_alerts = [a.id for a in _rows(engine, Alert) if a.id not in old]
    assert kept_alerts and _rows(engine, OutboxMessage, OutboxMessage.alert_id.in_(old))

    counts = purge(
        engine, NOW, history_days=int(5 * 365.25), access_log_days=730, decision_log_days=1826
    )

    assert [a.id for a in _rows(engine, Alert)] == kept_alerts
    for model in (OutboxMessage, AlertEvent, AlertFollowUp):
        assert not _rows(engine, model, model.alert_id.in_(old))
    assert _rows(engine, OutboxMessage, OutboxMessage.alert_id.in_(kept_alerts))
    assert counts["alerts"] == len(old) and counts["outbox"] >= 1 and counts["alert_events"] >= 2
    assert counts["exposures"] == 1
    assert {e.ref for e in _rows(engine, Exposure)} == {"INC-NEW"}
    snapshots = _rows(engine, Snapshot)
    assert snapshots and all(s.as_of >= utc("2021-06-01") or s.is_current for s in snapshots)
    assert counts["snapshots"] >= 1
    assert [a.at.year for a in _rows(engine, AccessLogEntry)] == [2026]
    assert counts["access_log"] == 1
    # The 2019 decisions are blanked, the new ones kept, and the chain (with the checkpoint
    # signed before the purge) still verifies.
    decisions = _rows(engine, Decision)
    blanked = [d for d in decisions if d.recorded_at < utc("2021-06-01")]
    recent = [d for d in decisions if d.recorded_at >= utc("2026-01-01")]
    assert blanked and all(d.input is None and d.erased_at == NOW for d in blanked)
    assert recent and all(d.input is not None for d in recent)
    assert counts["decisions_erased"] == len(blanked)
    with engine.connect() as conn:
        verification = audit.verify(conn, KEY)
    assert verification.ok, verification.problem


def test_an_unresolved_alert_is_kept_however_old(force):
    engine = force.engine
    with engine.begin() as conn:
        conn.execute(
            table_of(Alert)
            .update()
            .where(table_of(Alert).c.id.in_(force.old_alert_ids))
            .values(status="acknowledged", resolved_at=None)
        )

    purge(engine, NOW, history_days=1826, access_log_days=1826, decision_log_days=1826)

    assert len(_rows(engine, Alert, Alert.id.in_(force.old_alert_ids))) == len(force.old_alert_ids)


def test_purging_twice_purges_nothing_more(force):
    windows = {"history_days": 1826, "access_log_days": 730, "decision_log_days": 1826}
    purge(force.engine, NOW, **windows)
    assert set(purge(force.engine, NOW, **windows).values()) == {0}


def test_retention_settings_are_strict():
    settings = Settings.from_env({"TT_ACCESS_LOG_YEARS": "2", "TT_DECISION_LOG_YEARS": "7.5"})
    assert settings.access_log_days == 730 and settings.decision_log_days == int(7.5 * 365.25)
    assert Settings.from_env({}).access_log_days == Settings.from_env({}).history_days
    for name, bad in (
        ("TT_ACCESS_LOG_YEARS", "two"),
        ("TT_ACCESS_LOG_YEARS", "0.5"),
        ("TT_DECISION_LOG_YEARS", "nan"),
        ("TT_DECISION_LOG_YEARS", "101"),
        ("TT_PULL_SECONDS", "1"),
        ("TT_SCHEDULER_STALE_SECONDS", "soon"),
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})


def test_the_nightly_job_logs_each_purge_with_its_counts(force, database_url, rules_dir, caplog):
    import logging

    from trauma_tracker.jobs import Jobs

    settings = Settings(database_url=database_url, rules_dir=rules_dir)
    jobs = Jobs(settings, force.engine, clock=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="trauma_tracker.jobs"):
        jobs.guarded("retention", jobs.retention)()
    [record] = [r for r in caplog.records if r.getMessage() == "retention purge"]
    assert record.purged["alerts"] == len(force.old_alert_ids)
    assert record.purged["access_log"] == 0  # within the history by default
