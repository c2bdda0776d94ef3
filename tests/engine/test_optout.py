"""Opt-out and opt-in on both databases: effective at once, audited, recomputed on return."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.people.opt_out import UnknownPerson, opt_in, opt_out
from engine.people.own_record import person_exposure
from tests.forcedata import Force, deployment, incident, person, utc

AS_OF = "2025-07-01T00:00:00Z"
LATER = "2025-07-02T00:00:00Z"


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(
        person("S1"),
        person("S2"),
        incident("INC-1", "2025-06-01T10:00:00Z", "SUICIDE"),
        deployment("INC-1", "S1", "attending"),
        deployment("INC-1", "S2", "attending"),
    )
    force.evaluate(AS_OF)
    yield force
    force.close()


def events(force):
    with force.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT staff_id, action, actor, channel FROM opt_out_events ORDER BY id")
        )
        return [tuple(r) for r in rows]


def test_opting_out_deletes_derived_data_at_once_and_stops_making_it(force):
    assert force.count("exposures", "S1") == 1 and force.snapshot("S1") is not None

    assert opt_out(force.engine, "S1", actor="wellbeing.admin", clock=lambda: utc(AS_OF))

    assert force.count("exposures", "S1") == 0
    assert force.count("snapshots", "S1") == 0
    assert person_exposure(force.engine, "S1", utc(AS_OF), history_days=1826) == {
        "staff_id": "S1",
        "opted_out": True,
    }
    # New records about them, and a full rebuild, still make nothing.
    force.add(
        incident("INC-2", "2025-06-20T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-2", "S1", "attending"),
    )
    force.evaluate(LATER)
    force.evaluate(LATER, full=True)
    assert force.count("exposures", "S1") == 0
    assert force.count("snapshots", "S1") == 0
    # S2 no longer has S1 as a peer: alone in the group, the percentile is 0.
    assert force.snapshot("S2")["trauma_points_365d_role_percentile"] == 0.0
    assert events(force) == [("S1", "opt_out", "wellbeing.admin", "cli")]


def test_opting_back_in_recomputes_from_the_source_records(force):
    opt_out(force.engine, "S1", actor="S1")
    force.add(  # happened while they were out
        incident("INC-2", "2025-06-20T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-2", "S1", "attending"),
    )
    force.evaluate(AS_OF)

    assert opt_in(force.engine, "S1", force.criteria, actor="S1", channel="web")

    assert [e["ref"] for e in force.exposures("S1")] == ["INC-1", "INC-2"]
    snap = force.snapshot("S1")
    assert (snap["exposures_30d"], snap["trauma_points_30d"]) == (2, 3.0)
    assert snap["as_of"] == utc(AS_OF)  # rejoins the newest evaluation's moment
    view = person_exposure(force.engine, "S1", utc(AS_OF), history_days=1826)
    assert view["opted_out"] is False and view["windows"]["30d"] == {"points": 3.0, "exposures": 2}
    assert [e[:2] for e in events(force)] == [("S1", "opt_out"), ("S1", "opt_in")]
    assert events(force)[1][3] == "web"
    # A later evaluation agrees with a full rebuild about them.
    force.evaluate(LATER)
    incremental = force.snapshot("S1")
    force.evaluate(LATER, full=True)
    full = force.snapshot("S1")
    assert {k: v for k, v in incremental.items() if k not in ("evaluation_id", "as_of")} == {
        k: v for k, v in full.items() if k not in ("evaluation_id", "as_of")
    }


def test_repeated_and_unknown_requests(force):
    assert opt_in(force.engine, "S1", force.criteria, actor="admin") is False  # not out
    assert opt_out(force.engine, "S1", actor="admin") is True
    assert opt_out(force.engine, "S1", actor="admin") is False  # already out
    with pytest.raises(UnknownPerson):
        opt_out(force.engine, "NOBODY", actor="admin")
    assert events(force) == [("S1", "opt_out", "admin", "cli")]
