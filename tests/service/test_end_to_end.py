"""End to end: `run` on PostgreSQL takes dropped files to the supervisor's inbox and Teams,
survives a SIGKILL without losing or repeating anything, and stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from models import Alert, Exposure, OutboxMessage, table_of
from models.db import make_engine, migrate
from tests.service.drops import (
    OFFICER,
    OTHER_OFFICER,
    PRIVATE_WORDS,
    write_exposure,
    write_team,
)
from tests.service.processes import log_lines, wait_for_log, wait_until
from trauma_tracker.sinks import MailSink, TeamsSink, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


# The shipped routing, without quiet hours and digests: each alert is sent as it opens.
ROUTING = """\
recipients:
  supervisor: {channels: [teams, email]}
  wellbeing: {channels: [email], email: wellbeing@force.example}
escalate: {after: 72h, to: wellbeing}
"""


@pytest.fixture
def sinks():
    mail, teams = MailSink().start(), TeamsSink().start()
    yield mail, teams
    mail.stop()
    teams.stop()


class Service:
    """`trauma-tracker run` in a session of its own, so that a SIGKILL can take it whole (as
    a machine failing, or systemd killing the unit's cgroup, would)."""

    def __init__(self, url, rules_dir, drop_dir, sinks, log: Path):
        mail, teams = sinks
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TT_")},
            "TT_DATABASE_URL": url,
            "TT_RULES_DIR": str(rules_dir),
            "TT_DROP_DIRS": str(drop_dir),
            "TT_POLL_SECONDS": "1",
            "TT_SMTP_URL": mail.url,
            "TT_EMAIL_FROM": "trauma-tracker@force.example",
            "TT_TEAMS_WEBHOOK_URL": teams.url,
            "TT_BASE_URL": self.base,
            "TT_SECRET_KEY": "end-to-end test key, long enough",
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trauma_tracker", "run", "--port", str(self.port)],
                stdout=handle,
                stderr=handle,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
            )
        assert wait_until(self._healthy, 60), self.log.read_text()[-3000:]

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or starting its workers
            return False

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)

    def cleanup(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # already gone, with its children
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _alert_ids(engine, staff_id):
    alerts = table_of(Alert)
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(alerts.c.id).where(
                    alerts.c.staff_id == staff_id, alerts.c.rule_id == "trim-check"
                )
            )
            .scalars()
            .all()
        )


def _storing_incidents(engine) -> bool:
    """Whether another session is storing cc_incidents rows right now (not reading them, as
    scoring does)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND state = 'active' AND query ILIKE '%cc_incidents%' "
                    "AND query NOT ILIKE 'select%'"
                )
            ).scalar()
        )


def _outbox(engine):
    outbox = table_of(OutboxMessage)
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox)).all()


def _to_supervisor(mail, engine, staff_id) -> list:
    """The supervisor's emails about the person's TRiM alert (they link to it)."""
    links = [f"/alerts/{alert_id}" for alert_id in _alert_ids(engine, staff_id)]
    return [
        m
        for m in mail.mails
        if "sam@force.example" in m.to and any(link in m.text for link in links)
    ]


def test_dropped_files_reach_the_supervisor_and_a_kill_loses_and_repeats_nothing(
    postgres_schema_url, rules_dir, drop_dir, sinks, tmp_path
):
    mail, teams = sinks
    (rules_dir / "routing.yaml").write_text(ROUTING)
    engine = make_engine(postgres_schema_url)
    migrate(engine)
    service = Service(postgres_schema_url, rules_dir, drop_dir, sinks, tmp_path / "run.log")
    try:
        service.start()
        write_team(drop_dir)
        write_exposure(drop_dir, "INC-1", staff_id=OFFICER)

        # The supervisor hears by email and on Teams.
        assert wait_until(lambda: _to_supervisor(mail, engine, OFFICER), 90), (
            service.log.read_text()
        )
        [alert] = _alert_ids(engine, OFFICER)
        assert wait_until(lambda: any(f"/alerts/{alert}" in str(p.body) for p in teams.posts), 30)

        ready = requests.get(f"{service.base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        scraped = requests.get(f"{service.base}/metrics", timeout=5).text
        families = {f.name: f.samples for f in text_string_to_metric_families(scraped)}
        # Counted in the scheduler's process, served by a gunicorn worker.
        assert sum(s.value for s in families["tt_rows_ingested"]) >= 5
        assert [s.value for s in families["tt_scheduler_lock_held"]] == [1]

        # A second exposure in a large file, and the whole service is killed while it is
        # being stored: its transaction rolls back and the file stays in the drop folder.
        write_exposure(drop_dir, "INC-2", staff_id=OTHER_OFFICER, other_incidents=100_000)
        assert wait_until(lambda: _storing_incidents(engine), 30)
        service.kill()
        assert (drop_dir / "cc_incidents_INC-2.csv").exists()
        service.start()

        assert wait_until(lambda: _to_supervisor(mail, engine, OTHER_OFFICER), 90), (
            service.log.read_text()[-4000:]
        )
        assert wait_until(lambda: all(row.status == "sent" for row in _outbox(engine)), 60), [
            (r.id, r.status, r.last_error) for r in _outbox(engine)
        ]
        assert service.terminate() == 0
    except BaseException:
        engine.dispose()
        raise
    finally:
        service.cleanup()

    # Nothing lost: both exposures, one TRiM alert each, every file processed.
    exposures = table_of(Exposure)
    with engine.connect() as conn:
        refs = conn.execute(sa.select(exposures.c.ref, exposures.c.staff_id)).all()
    assert sorted(refs) == [("INC-1", OFFICER), ("INC-2", OTHER_OFFICER)]
    assert len(_alert_ids(engine, OFFICER)) == len(_alert_ids(engine, OTHER_OFFICER)) == 1
    assert sorted(p.name for p in drop_dir.iterdir()) == ["processed"]
    # Nothing sent twice: one message per message key, on each channel.
    message_ids = [m.message_id for m in mail.mails]
    assert len(message_ids) == len(set(message_ids))
    assert (
        len(_to_supervisor(mail, engine, OFFICER))
        == len(_to_supervisor(mail, engine, OTHER_OFFICER))
        == 1
    )
    sent = _outbox(engine)
    email_keys = {r.message_key for r in sent if r.channel == "email"}
    teams_keys = {r.message_key for r in sent if r.channel == "teams"}
    assert len(mail.mails) == len(email_keys)
    assert len(teams.posts) == len(teams_keys)
    # A clean stop left nothing claimed, and said so in JSON lines.
    assert not [r for r in sent if r.status == "claimed"]
    assert any(line.get("message") == "scheduler stopped" for line in log_lines(service.log))
    wait_for_log(service.log, "stopped")
    # The service's own logs (JSON lines, and gunicorn's access log) name nobody and no incident.
    text = service.log.read_text()
    assert [word for word in PRIVATE_WORDS if word in text] == []
    engine.dispose()
