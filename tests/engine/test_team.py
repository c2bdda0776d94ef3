"""Supervision from the people history, the team view and the handover list (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.people import team
from models import Alert, Exposure, OptOut, table_of
from tests.engine import rulekit
from tests.engine.rulekit import database

AS_OF = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
TODAY = date(2025, 6, 2)
DAY = timedelta(days=1)


def add_people(engine, *people):
    """People versions with the same keys in every row (one executemany)."""
    rulekit.add_people(engine, *({"leave_date": None, **p} for p in people))


def add_exposures(engine, *rows):
    base = {"feed": "cc_incidents", "role": "attending", "criteria_version": "v1"}
    with engine.begin() as conn:
        conn.execute(
            table_of(Exposure).insert(),
            [
                {
                    **base,
                    "incident_key": f"cc:{r['ref']}",
                    "scored_at": AS_OF,
                    "points": float(r["tier"]),
                    "category": "homicide" if r["tier"] == 2 else "sudden_death",
                    **r,
                }
                for r in rows
            ],
        )


@pytest.fixture
def force(database_url):
    """An inspector (INS) over two sergeants (SGA, SGB); SGA's constables PC1, PC2 (PC2 moved
    to SGB yesterday), SGB's PC3 (opted out) and PC4 (left last month); PC5 joined SGA ten
    days ago; a loop X1 <-> X2 in the feed."""
    engine = database(database_url)
    start = date(2015, 1, 1)
    add_people(
        engine,
        {"staff_id": "INS", "display_name": "Inspector Ives"},
        {"staff_id": "SGA", "supervisor_id": "INS", "display_name": "Sgt Able"},
        {"staff_id": "SGB", "supervisor_id": "INS", "display_name": "Sgt Baker"},
        {"staff_id": "PC1", "supervisor_id": "SGA", "display_name": "Pat One"},
        {"staff_id": "PC2", "supervisor_id": "SGA", "display_name": "Pat Two"},
        {"staff_id": "PC2", "supervisor_id": "SGB", "valid_from": TODAY - DAY},
        {"staff_id": "PC3", "supervisor_id": "SGB"},
        {"staff_id": "PC4", "supervisor_id": "SGB", "leave_date": TODAY - 30 * DAY},
        {"staff_id": "PC5", "supervisor_id": "SGB", "valid_from": start},
        {"staff_id": "PC5", "supervisor_id": "SGA", "valid_from": TODAY - 10 * DAY},
        {"staff_id": "X1", "supervisor_id": "X2"},
        {"staff_id": "X2", "supervisor_id": "X1"},
    )
    with engine.begin() as conn:
        conn.execute(table_of(OptOut).insert().values(staff_id="PC3", since=AS_OF, actor="PC3"))
    yield engine
    engine.dispose()


def test_supervision_is_direct_or_down_the_chain_as_in_force_today(force):
    with force.connect() as conn:
        assert team.supervised_staff(conn, "SGA", TODAY) == ["PC1", "PC5"]
        assert team.supervised_staff(conn, "SGB", TODAY) == ["PC2", "PC3"]  # PC4 has left
        assert team.supervised_staff(conn, "INS", TODAY) == [
            "PC1", "PC2", "PC3", "PC5", "SGA", "SGB",
        ]  # fmt: skip
        # the day before the move, PC2 was still SGA's; eleven days ago PC5 was still SGB's
        assert team.supervised_staff(conn, "SGA", TODAY - 2 * DAY) == ["PC1", "PC2", "PC5"]
        assert team.supervised_staff(conn, "SGA", TODAY - 11 * DAY) == ["PC1", "PC2"]
        assert team.supervised_staff(conn, "PC1", TODAY) == []
        assert team.supervised_staff(conn, "X1", TODAY) == ["X2"]  # a loop ends
        assert team.supervises(conn, "INS", "PC2", TODAY)
        assert team.supervises(conn, "SGB", "PC2", TODAY)
        assert not team.supervises(conn, "SGA", "PC2", TODAY)
        assert not team.supervises(conn, "SGB", "PC4", TODAY)
        assert not team.supervises(conn, "X1", "X1", TODAY)
        assert team.supervises(conn, "X1", "X2", TODAY)
        assert not team.supervises(conn, "NOBODY", "PC1", TODAY)
        assert team.is_supervisor(conn, "SGA", TODAY) and team.is_supervisor(conn, "INS", TODAY)
        assert not team.is_supervisor(conn, "PC1", TODAY)


def test_supervisors_who_have_left_supervise_nobody(force):
    add_people(force, {"staff_id": "SGA", "supervisor_id": "INS", "valid_from": TODAY,
                       "leave_date": TODAY})  # fmt: skip
    with force.connect() as conn:
        assert team.supervised_staff(conn, "SGA", TODAY) == []
        assert not team.is_supervisor(conn, "SGA", TODAY)
        assert not team.supervises(conn, "SGA", "PC1", TODAY)
        # nor does the chain pass through them
        assert not team.supervises(conn, "INS", "PC1", TODAY)
        assert "PC1" not in team.supervised_staff(conn, "INS", TODAY)


def test_team_view_windows_serious_exposures_open_alerts_and_opted_out_count(force):
    add_exposures(
        force,
        {"staff_id": "PC1", "ref": "A", "tier": 2, "at": AS_OF - 2 * DAY},
        {"staff_id": "PC1", "ref": "B", "tier": 1, "at": AS_OF - 3 * DAY},
        {"staff_id": "PC1", "ref": "C", "tier": 2, "at": AS_OF - 8 * DAY},
        {"staff_id": "PC1", "ref": "D", "tier": 2, "at": AS_OF - 200 * DAY},
        {"staff_id": "PC1", "ref": "E", "tier": 2, "at": AS_OF + DAY},  # after as_of
        {"staff_id": "PC3", "ref": "F", "tier": 2, "at": AS_OF - DAY},
    )
    alert = {
        "rule_id": "r", "rule_version": "1", "ruleset_hash": "h", "severity": "high",
        "title": "t", "opened_at": AS_OF, "decision_id": "d", "notify": "[]",
        "recipients": "[]",
    }  # fmt: skip
    with force.begin() as conn:
        conn.execute(
            table_of(Alert).insert(),
            [
                {**alert, "staff_id": "PC1", "status": "open", "open_key": "r:PC1"},
                {
                    **alert,
                    "staff_id": "PC1",
                    "status": "resolved",
                    "open_key": None,
                    "decision_id": "e",
                },  # fmt: skip
            ],
        )
    view = team.team_view(force, "SGA", AS_OF)
    assert view["opted_out_count"] == 0
    assert [p["staff_id"] for p in view["people"]] == ["PC1", "PC5"]  # by name
    pc1 = view["people"][0]
    assert pc1["display_name"] == "Pat One" and pc1["open_alerts"] == 1
    assert (pc1["supervisor_id"], pc1["direct"]) == ("SGA", True)
    assert pc1["windows"]["30d"] == {"points": 5.0, "exposures": 3}
    assert pc1["windows"]["365d"] == {"points": 7.0, "exposures": 4}
    assert [(e["category"], e["tier"]) for e in pc1["serious_7d"]] == [("homicide", 2)]
    assert "ref" not in pc1["serious_7d"][0]
    assert view["people"][1]["windows"]["5y"] == {"points": 0.0, "exposures": 0}

    inspector = {p["staff_id"]: p["direct"] for p in team.team_view(force, "INS", AS_OF)["people"]}
    assert inspector == {"SGA": True, "SGB": True, "PC1": False, "PC2": False, "PC5": False}
    sgb = team.team_view(force, "SGB", AS_OF)
    assert [p["staff_id"] for p in sgb["people"]] == ["PC2"]  # PC3 opted out: only counted
    assert sgb["opted_out_count"] == 1
    assert "PC3" not in repr(sgb)


def test_handover_lists_who_joined_in_the_last_30_days_with_recent_exposure(force):
    add_exposures(
        force,
        {"staff_id": "PC2", "ref": "A", "tier": 2, "at": AS_OF - 5 * DAY},
        {"staff_id": "PC2", "ref": "B", "tier": 1, "at": AS_OF - 40 * DAY},
    )
    joined = team.handover(force, "SGB", AS_OF)
    assert [(p["staff_id"], p["joined_on"]) for p in joined] == [("PC2", "2025-06-01")]
    assert [e["category"] for e in joined[0]["recent"]] == ["homicide"]
    assert joined[0]["windows"]["365d"]["exposures"] == 2
    assert [p["staff_id"] for p in team.handover(force, "SGA", AS_OF)] == ["PC5"]
    assert team.handover(force, "INS", AS_OF) == []  # moves within the inspector's teams
    # a new supervisor: their whole team joined
    add_people(force, {"staff_id": "NEW", "display_name": "Sgt New"})
    add_people(force, {"staff_id": "PC1", "supervisor_id": "NEW", "valid_from": TODAY})
    assert [p["staff_id"] for p in team.handover(force, "NEW", AS_OF)] == ["PC1"]


def test_the_team_pages_chain_is_the_chain_and_gives_handover_the_same_list(force):
    from engine.people.team_page import team_page

    add_exposures(force, {"staff_id": "PC2", "ref": "A", "tier": 2, "at": AS_OF - 5 * DAY})
    add_people(force, {"staff_id": "NEW", "display_name": "Sgt New"})
    add_people(force, {"staff_id": "PC1", "supervisor_id": "NEW", "valid_from": TODAY})
    checked = 0
    for supervisor in ("SGA", "SGB", "INS", "NEW", "PC2"):
        chain = team_page(force, supervisor, AS_OF)["chain"]
        with force.connect() as conn:
            whole = team._chain(conn, supervisor, TODAY)
            out = team.opted_out_among(conn, whole)
        assert chain == {s: since for s, since in whole.items() if s not in out}, supervisor
        reused = team.handover(force, supervisor, AS_OF, chain=chain)
        assert reused == team.handover(force, supervisor, AS_OF), supervisor
        checked += len(chain)
    assert checked > 5  # the force's chains are not all empty
    assert "PC3" not in team_page(force, "SGB", AS_OF)["chain"]  # opted out: only counted
