"""The outbox itself: atomic claims, leases, backoff to failed, retry, channel health."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from notifications import outbox
from tests.delivery.conftest import queue, utc

NOW = utc("2026-05-12T10:00:00Z")


def claim(engine, token, limit=100, at=NOW, **options):
    with engine.begin() as conn:
        return outbox.claim(conn, at, channels=["email"], token=token, limit=limit, **options)


def statuses(dispatcher):
    return [(r.status, r.attempts) for r in dispatcher.rows()]


def test_a_claim_is_atomic_counts_the_attempt_and_holds_a_lease(db, dispatcher):
    ids = queue(db, recipient="s2@force.example", at=NOW, count=3)
    queue(db, recipient="s2@force.example", at=NOW + timedelta(minutes=5))  # not due yet
    queue(db, recipient="S2", channel="teams", at=NOW)  # another channel

    first = claim(db, "run-a", limit=2)
    second = claim(db, "run-b")
    third = claim(db, "run-c")

    assert [c.id for c in first] == ids[:2]
    assert [c.id for c in second] == ids[2:]  # what the first left, nothing it holds
    assert third == []
    assert all(c.attempts == 1 for c in first + second)  # counted before any send
    rows = {r.id: r for r in dispatcher.rows()}
    assert {rows[i].claimed_by for i in ids} == {"run-a", "run-b"}
    assert {rows[i].lease_until for i in ids} == {NOW + outbox.LEASE}
    assert sorted(r.status for r in rows.values()) == ["claimed"] * 3 + ["pending"] * 2


def test_a_claim_whose_lease_ran_out_is_pending_again(db, dispatcher):
    (row_id,) = queue(db, recipient="s2@force.example", at=NOW)
    claim(db, "died", lease=timedelta(minutes=10))
    with db.begin() as conn:
        assert outbox.release_expired(conn, NOW + timedelta(minutes=9)) == 0
    assert claim(db, "other", at=NOW + timedelta(minutes=9)) == []
    with db.begin() as conn:
        assert outbox.release_expired(conn, NOW + timedelta(minutes=10)) == 1
    (again,) = claim(db, "other", at=NOW + timedelta(minutes=10))
    assert (again.id, again.attempts) == (row_id, 2)
    with db.begin() as conn:  # the dead run's late result no longer counts
        assert outbox.mark_sent(conn, [row_id], "died", NOW) == 0
        assert outbox.mark_sent(conn, [row_id], "other", NOW) == 1


def test_transient_failures_back_off_with_jitter_then_fail_with_the_last_error(db, dispatcher):
    (row_id,) = queue(db, recipient="s2@force.example", at=NOW)
    rng = random.Random(3)
    at, waits = NOW, []
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        (held,) = claim(db, f"run-{attempt}", at=at)
        assert held.attempts == attempt
        with db.begin() as conn:
            status = outbox.retry_later(
                conn, [held], f"run-{attempt}", at, f"451 busy {attempt}", rng=rng
            )
        (row,) = dispatcher.rows()
        if attempt < outbox.MAX_ATTEMPTS:
            assert status == row.status == "pending"
            waits.append(row.due_at - at)
            at = row.due_at
    assert row.status == status == "failed"
    assert row.last_error == f"451 busy {outbox.MAX_ATTEMPTS} (gave up after 8 attempts)"
    for n, wait in enumerate(waits, 1):  # between half and all of 30 s doubling, at most 2 h
        ceiling = min(outbox.FIRST_DELAY * 2 ** (n - 1), outbox.MAX_DELAY)
        assert ceiling / 2 <= wait <= ceiling
    assert waits[-1] > waits[0] * 10
    assert (
        len({w / min(outbox.FIRST_DELAY * 2**n, outbox.MAX_DELAY) for n, w in enumerate(waits)}) > 1
    )
    with db.connect() as conn:
        (listed,) = outbox.list_messages(conn, "failed")
    assert (listed["id"], listed["attempts"], listed["last_error"]) == (
        row_id,
        outbox.MAX_ATTEMPTS,
        row.last_error,
    )


def test_retry_after_is_a_floor_for_the_wait(db, dispatcher):
    queue(db, recipient="s2@force.example", at=NOW)
    (held,) = claim(db, "run")
    with db.begin() as conn:
        outbox.retry_later(conn, [held], "run", NOW, "429", retry_after=600, rng=random.Random(1))
    (row,) = dispatcher.rows()
    assert row.due_at == NOW + timedelta(seconds=600)


def test_retry_puts_a_failed_message_back_and_refuses_anything_else(db, dispatcher):
    failed, pending = queue(db, recipient="s2@force.example", at=NOW, count=2)
    (held, _) = claim(db, "run")
    with db.begin() as conn:
        outbox.release(conn, [pending], "run")
        outbox.mark_failed(conn, [held.id], "run", NOW, "550 no such mailbox")
    with db.begin() as conn:
        outbox.retry(conn, failed, NOW + timedelta(hours=1))
    row = dispatcher.rows()[0]
    assert (row.status, row.attempts, row.due_at) == ("pending", 0, NOW + timedelta(hours=1))
    with pytest.raises(outbox.OutboxError, match="is pending; only a failed one"), db.begin() as c:
        outbox.retry(c, pending, NOW)
    with pytest.raises(outbox.OutboxError, match="no outbox message 999"), db.begin() as c:
        outbox.retry(c, 999, NOW)


def test_a_permanent_failure_makes_a_channel_unhealthy_until_a_send_succeeds(db):
    with db.begin() as conn:
        outbox.record_health(conn, "teams", NOW, ok=True)
        outbox.record_health(
            conn, "teams", NOW + timedelta(minutes=1), ok=False, error="400 bad card"
        )
        outbox.record_health(conn, "teams", NOW + timedelta(minutes=2), ok=False, error="400 again")
    with db.connect() as conn:
        teams = outbox.health(conn)["teams"]
    assert (teams["healthy"], teams["last_error"]) == (False, "400 again")
    assert utc(teams["since"]) == NOW + timedelta(minutes=1)  # when it went bad
    with db.begin() as conn:
        outbox.record_health(conn, "teams", NOW + timedelta(minutes=3), ok=True)
    with db.connect() as conn:
        teams = outbox.health(conn)["teams"]
    assert (teams["healthy"], teams["last_error"]) == (True, None)
    assert utc(teams["since"]) == NOW + timedelta(minutes=3)
