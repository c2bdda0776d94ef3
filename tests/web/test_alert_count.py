"""The Me page's "alerts waiting" count (engine.alerts.view.count_for_recipient) is the
length of the list the alerts page shows, for every kind of recipient and status."""

from __future__ import annotations

import pytest

from engine.alerts.view import STATUS_FILTERS, alerts_for_recipient, count_for_recipient


def test_the_count_is_the_lists_length_for_every_recipient_and_status(web_force):
    engine = web_force.engine
    recipients = [web_force.staff_id(p) for p in ("supervisor", "other_supervisor", "officer")]
    counted = {}
    for staff_id in [*recipients, None]:  # None: every alert, as the wellbeing team sees
        for status in STATUS_FILTERS:
            listed = alerts_for_recipient(engine, staff_id, status)
            counted[staff_id, status] = count_for_recipient(engine, staff_id, status)
            assert counted[staff_id, status] == len(listed), (staff_id, status)
    supervisor = web_force.staff_id("supervisor")
    assert counted[supervisor, "unresolved"] >= 2  # P100's cluster and P101's TRiM alerts
    assert counted[None, "all"] >= counted[supervisor, "all"]
    with pytest.raises(ValueError, match="status"):
        count_for_recipient(engine, supervisor, "sideways")
