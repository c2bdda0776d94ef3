"""The overview's figures and suppression on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io

import pytest

from engine.oversight.aggregates import AggregateError, overview, table_csv, trend_csv
from tests.oversight.forcekit import NOW, build_force


@pytest.fixture
def force(database_url):
    force = build_force(database_url)
    yield force
    force.close()


def test_teams_count_todays_people_and_hide_small_cells_with_a_complement(force):
    rows = overview(force.engine, NOW).rows("team")
    hidden = {
        "people": None,
        "exposures_365d": None,
        "points_365d_mean": None,
        "open_alerts": None,
        "suppressed": True,
    }
    assert rows == [
        # Q1-Q3 alone would be D1 minus the others: T1, the smallest sibling, is hidden too.
        {"unit_id": "T4", "name": "Team Four", "people": 5, "exposures_365d": 1,
         "points_365d_mean": 0.2, "open_alerts": 1, "suppressed": False},
        {"unit_id": "T1", "name": "Team One", **hidden},
        {"unit_id": "T3", "name": "Team Three", "people": 8, "exposures_365d": 2,
         "points_365d_mean": 0.25, "open_alerts": 1, "suppressed": False},
        {"unit_id": "T2", "name": "Team Two", **hidden},
    ]  # fmt: skip


def test_departments_and_areas_leave_out_opted_out_leavers_and_joiners(force):
    view = overview(force.engine, NOW)
    departments = {r["unit_id"]: r for r in view.rows("department")}
    # P1-P6, P8, Q1-Q3, S1-S7: 17; P7 opted out, so their exposure is not in the 4.
    assert departments["D1"]["people"] == 17
    assert departments["D1"]["exposures_365d"] == 4
    assert departments["D1"]["open_alerts"] == 1
    assert departments["D2"]["people"] == 5  # L1 left, N1 starts tomorrow
    assert [r["unit_id"] for r in view.rows("area")] == ["A1", "A2"]
    assert view.total()["people"] == 22
    assert view.total()["exposures_365d"] == 5


def test_the_trend_gives_rates_per_person_by_month(force):
    trend = overview(force.engine, NOW).trend("team")
    assert trend["months"][0] == "2024-07" and trend["months"][-1] == "2025-06"
    team_three = next(u for u in trend["units"] if u["unit_id"] == "T3")
    rates = {m["month"]: m for m in team_three["months"]}
    assert rates["2025-05"]["exposures_per_person"] == 0.25
    assert rates["2025-06"]["alerts_per_person"] == 0.125
    assert rates["2025-04"]["exposures_per_person"] == 0.0
    team_two = next(u for u in trend["units"] if u["unit_id"] == "T2")
    assert team_two["suppressed"] and team_two["people"] is None
    assert {m["exposures_per_person"] for m in team_two["months"]} == {None}


def test_the_csv_is_exactly_the_table_with_suppression_shown(force):
    view = overview(force.engine, NOW)
    lines = list(csv.DictReader(io.StringIO(table_csv(view, "team"))))
    assert [line["unit_id"] for line in lines] == ["T4", "T1", "T3", "T2", ""]
    assert lines[1] == {
        "unit_id": "T1",
        "name": "Team One",
        "people": "",
        "exposures_365d": "",
        "points_365d_mean": "",
        "open_alerts": "",
        "suppressed": "yes",
    }
    assert lines[2]["people"] == "8" and lines[2]["suppressed"] == "no"
    assert lines[-1]["name"] == "Whole force" and lines[-1]["people"] == "22"
    trend_lines = list(csv.DictReader(io.StringIO(trend_csv(view, "team"))))
    assert len(trend_lines) == 5 * 12
    assert {line["exposures_per_person"] for line in trend_lines if line["unit_id"] == "T2"} == {""}


def test_a_unit_name_cannot_become_a_spreadsheet_formula(force):
    with force.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE units SET name = '=HYPERLINK(1)' WHERE unit_id = 'T4'")
    text = table_csv(overview(force.engine, NOW), "team")
    assert "'=HYPERLINK(1)" in text


def test_an_unknown_level_is_refused_naming_the_field(force):
    with pytest.raises(AggregateError, match="^by: must be one of team, department, area"):
        overview(force.engine, NOW).rows("street")


def test_figures_are_reused_until_something_they_read_changes(force):
    from engine.alerts.lifecycle import resolve
    from engine.oversight.aggregates import current_overview
    from engine.people.opt_out import opt_out
    from tests.forcedata import person

    first = current_overview(force.engine, NOW)
    assert current_overview(force.engine, NOW) is first
    assert current_overview(force.engine, NOW, trend=False) is not first
    with force.engine.begin() as conn:
        resolve(conn, 1, "W1", "support_offered", NOW)  # R2's alert
    resolved = current_overview(force.engine, NOW)
    assert resolved is not first
    assert {r["unit_id"]: r["open_alerts"] for r in resolved.rows("team")}["T4"] == 0
    opt_out(force.engine, "S7", actor="S7", clock=lambda: NOW)
    assert {r["unit_id"]: r["people"] for r in current_overview(force.engine, NOW).rows("team")}[
        "T3"
    ] == 7
    force.add(person("S9", unit_id="T3"))
    after_ingest = current_overview(force.engine, NOW).rows("team")
    assert {r["unit_id"]: r["people"] for r in after_ingest}["T3"] == 8
