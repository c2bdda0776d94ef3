"""Privacy review of the dispatcher's logs: they carry ids, never a person's email address
(which names them: jane.smith@...). Mail servers quote the recipient's address in their
refusals, and a bad address from the people feed is quoted in the transport's error; that text
belongs in the outbox row (for the administrator), not in the service's JSON logs."""

from __future__ import annotations

import logging
from datetime import timedelta

from tests.delivery.conftest import Dispatcher, queue, utc
from tests.delivery.servers import MailRecorder, SmtpServer
from tests.engine.rulekit import add_people

NOON = utc("2026-05-12T11:00:00Z")  # 12:00 in London: outside quiet hours
ADDRESS = "jane.smith@force.example"


class QuotingRecorder(MailRecorder):
    """Refuses every message quoting its recipient, as Postfix and Exchange do."""

    def __init__(self, code: str):
        super().__init__()
        self.code = code

    async def handle_DATA(self, server, session, envelope):
        return f"{self.code} <{envelope.rcpt_tos[0]}>: Recipient address rejected"


def _logged(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def _run(db, webhook, code: str, caplog) -> tuple[Dispatcher, int]:
    add_people(db, {"staff_id": "S9", "email": ADDRESS, "display_name": "Jane Smith"})
    server = SmtpServer(QuotingRecorder(code))
    try:
        (row_id,) = queue(db, recipient="S9", at=NOON)
        dispatcher = Dispatcher(db, server, webhook)
        with caplog.at_level(logging.INFO, logger="engine"):
            dispatcher.run(NOON + timedelta(minutes=1))
    finally:
        server.stop()
    return dispatcher, row_id


def test_a_permanent_refusal_quoting_the_address_is_logged_without_it(db, webhook, caplog):
    dispatcher, row_id = _run(db, webhook, "550 5.1.1", caplog)

    (row,) = dispatcher.rows(dispatcher_rows_id(row_id))
    assert row.status == "failed" and ADDRESS in row.last_error  # the admin still sees why
    logged = _logged(caplog)
    assert f"outbox [{row_id}] failed for good" in logged
    assert "550" in logged  # the reason stays in the log, the address does not
    assert ADDRESS not in logged and "jane.smith" not in logged


def test_a_transient_refusal_quoting_the_address_is_logged_without_it(db, webhook, caplog):
    dispatcher, row_id = _run(db, webhook, "450 4.2.0", caplog)

    (row,) = dispatcher.rows(dispatcher_rows_id(row_id))
    assert row.status == "pending" and row.attempts == 1
    logged = _logged(caplog)
    assert "will be tried again" in logged and "450" in logged
    assert ADDRESS not in logged and "jane.smith" not in logged


def test_a_bad_address_from_the_people_feed_is_not_logged(db, webhook, smtp, caplog):
    add_people(db, {"staff_id": "S9", "email": "Jane Smith (home)", "display_name": "J S"})
    (row_id,) = queue(db, recipient="S9", at=NOON)
    dispatcher = Dispatcher(db, smtp, webhook)
    with caplog.at_level(logging.INFO, logger="engine"):
        dispatcher.run(NOON + timedelta(minutes=1))

    (row,) = dispatcher.rows(dispatcher_rows_id(row_id))
    assert row.status == "failed"
    logged = _logged(caplog)
    assert f"outbox [{row_id}] failed for good" in logged
    assert "Jane Smith" not in logged


def dispatcher_rows_id(row_id: int):
    from tests.delivery.conftest import outbox_t

    return outbox_t.c.id == row_id


# --- the rules' log ----------------------------------------------------------------------------


def test_a_disagreement_between_engine_and_explanation_logs_no_figures(monkeypatch, caplog):
    """A disagreement is a bug to report, with the rule and the staff id; the person's figures
    (sickness days, points, ...) stay out of the service's log. The seam: durable_rules is made
    to fire nothing, as no real input makes the engine and Python disagree."""
    from engine.rules import durable
    from engine.rules.matching import match, snapshot_subjects
    from tests.engine.rulekit import THREE_RULES, default_pack, snapshot

    pack = default_pack()
    subjects = snapshot_subjects(pack, [snapshot("S1", **THREE_RULES)])
    monkeypatch.setattr(durable, "run", lambda pack, facts: set())
    with caplog.at_level(logging.INFO, logger="engine"):
        result = match(pack, subjects)

    assert result.disagreements  # still reported in full to whoever runs the evaluation
    logged = _logged(caplog)
    assert "engine and explanation disagree" in logged and "S1" in logged
    assert "cluster-30d" in logged
    for field, value in subjects[0].values.items():
        assert f"'{field}': {value!r}" not in logged
    assert "values" not in logged
