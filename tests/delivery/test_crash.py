"""Dispatchers in processes of their own: one killed between a send and its record, and two
at once over the same outbox (PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from notifications import outbox
from tests.delivery.conftest import queue, utc

NOW = utc("2026-05-12T11:00:00Z")
ROOT = Path(__file__).resolve().parents[2]


def child(database_url: str, smtp_url: str, now, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.delivery.dispatch_child",
            database_url,
            smtp_url,
            now.isoformat(),
            *options,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def addresses(n: int) -> list[str]:
    return [f"officer{i:04d}@force.example" for i in range(n)]


def queue_each(db, recipients: list[str]) -> list[int]:
    ids = []
    for index, address in enumerate(recipients):
        ids += queue(db, recipient=address, kind="escalation", at=NOW, alert_id=index + 1)
    return ids


def test_a_dispatcher_killed_between_send_and_record_sends_that_one_again_with_its_key(
    database_url, db, smtp, tmp_path
):
    recipients = addresses(5)
    ids = queue_each(db, recipients)
    marker = tmp_path / "sent-not-recorded"
    process = child(database_url, smtp.url, NOW, "--hang-after", "3", "--marker", str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the child never reached its third send"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    process.stdout.close()
    process.stderr.close()
    key = marker.read_text()
    assert len(smtp.mails) == 3
    with db.connect() as conn:
        rows = {r["id"]: r for r in outbox.list_messages(conn, "all")}
    assert [rows[i]["status"] for i in ids] == ["sent", "sent", "claimed", "claimed", "claimed"]
    assert rows[ids[2]]["message_key"] == key  # stored before the send

    # Another dispatcher, before the lease ran out: nothing to do. After it: the rest.
    early = child(database_url, smtp.url, NOW + timedelta(minutes=5))
    assert json.loads(early.communicate(timeout=60)[0])["sent"] == 0
    late = child(database_url, smtp.url, NOW + outbox.LEASE)
    report = json.loads(late.communicate(timeout=60)[0])

    assert report["sent"] == 3
    assert len(smtp.mails) == 6
    per_id = Counter(m.message_id for m in smtp.mails)
    assert per_id[f"<{key}@force.example>"] == 2  # the one copy again, recognisably
    assert sorted(per_id.values()) == [1, 1, 1, 1, 2]
    assert sorted(Counter(m.to[0] for m in smtp.mails).values()) == [1, 1, 1, 1, 2]
    with db.connect() as conn:
        assert {r["status"] for r in outbox.list_messages(conn, "all")} == {"sent"}


@pytest.mark.postgres
def test_two_dispatchers_at_once_deliver_each_of_1000_messages_exactly_once(
    postgres_schema_url, smtp
):
    from tests.engine.rulekit import database

    engine = database(postgres_schema_url)
    try:
        recipients = addresses(1000)
        queue_each(engine, recipients)
        runs = [child(postgres_schema_url, smtp.url, NOW, "--batch", "50") for _ in range(2)]
        # Both read at once (a child blocked on a full stderr pipe would stall), and a child
        # that failed shows its error rather than a JSON decode error of its empty output.
        with ThreadPoolExecutor(2) as pool:
            outputs = list(pool.map(lambda run: run.communicate(timeout=300), runs))
        for run, (_, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, err[-3000:]
        reports = [json.loads(out) for out, _ in outputs]

        assert sum(r["sent"] for r in reports) == 1000
        assert all(r["sent"] > 0 for r in reports)  # both took part
        assert Counter(m.to[0] for m in smtp.mails) == Counter(recipients)
        assert len({m.message_id for m in smtp.mails}) == 1000
        with engine.connect() as conn:
            listed = outbox.list_messages(conn, "all")
        assert {r["status"] for r in listed} == {"sent"}
        assert {r["attempts"] for r in listed} == {1}
    finally:
        engine.dispose()
