"""The Team page's paged view (engine.people.team_page): the whole team sorted, one page in detail,
the windows read from the current snapshots and equal to what engine.people.own_record counts at the
evaluation's moment; and the page's pagination."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

import engine.people.team_page
from engine.people.own_record import person_exposure
from engine.people.team import team_view
from engine.people.team_page import team_page
from engine.scoring.indicators import WINDOWS
from models import Snapshot, table_of

HISTORY_DAYS = max(WINDOWS.values()) + 2  # every window's exposures, whatever the horizon


def test_the_windows_are_the_snapshots_and_equal_the_persons_own_figures(web_force):
    engine, moment = web_force.engine, web_force.now
    snapshots = table_of(Snapshot)
    # One person's current snapshot gone (as for someone who joined since the evaluation):
    # their figures are counted from their exposures at the same moment.
    with engine.begin() as conn:
        conn.execute(snapshots.delete().where(snapshots.c.staff_id == "P101"))
    later = moment + timedelta(hours=5)
    view = team_page(engine, "P200", later, sort="name", descending=False)
    assert view["figures_as_of"] == moment  # the evaluation's, not the asking moment
    people = {p["staff_id"]: p for p in view["people"]}
    assert sorted(people) == ["P100", "P101", "P401"]
    for staff_id, row in people.items():
        own = person_exposure(engine, staff_id, moment, history_days=HISTORY_DAYS)
        assert row["windows"] == own["windows"], staff_id
    assert people["P100"]["windows"]["30d"]["exposures"] == 3  # not all zeros
    assert people["P101"]["windows"]["30d"]["exposures"] == 1


def test_the_whole_team_is_sorted_and_each_page_has_the_team_views_details(web_force):
    engine, now = web_force.engine, web_force.now
    whole = {p["staff_id"]: p for p in team_view(engine, "P200", now)["people"]}
    first = team_page(engine, "P200", now, sort="name", descending=False, page_size=2)
    second = team_page(engine, "P200", now, sort="name", descending=False, page=2, page_size=2)
    assert [p["staff_id"] for p in first["people"]] == ["P100", "P101"]
    assert [p["staff_id"] for p in second["people"]] == ["P401"]
    assert (first["total"], first["pages"], first["first"], second["first"]) == (3, 2, 1, 3)
    assert first["opted_out_count"] == second["opted_out_count"] == 1
    for row in first["people"] + second["people"]:
        expected = whole[row["staff_id"]]
        for key in ("display_name", "unit_id", "supervisor_id", "direct", "open_alerts"):
            assert row[key] == expected[key], key
        assert row["serious_7d"] == expected["serious_7d"]
    # sorted over the whole team, not within a page
    down = team_page(engine, "P200", now, sort="name", descending=True, page_size=2)
    assert [p["staff_id"] for p in down["people"]] == ["P401", "P101"]
    serious = team_page(engine, "P200", now, sort="serious", page_size=1)
    most = max(whole.values(), key=lambda p: len(p["serious_7d"]))
    assert len(serious["people"][0]["serious_7d"]) == len(most["serious_7d"]) > 0
    # past the last page: the last page
    assert team_page(engine, "P200", now, sort="name", page=99, page_size=2)["page"] == 2
    assert "P102" not in repr([first, second, down])


def test_the_team_page_shows_a_page_at_a_time_with_pagination(
    client, sign_in_as, monkeypatch, web_force
):
    monkeypatch.setattr(engine.people.team_page, "PAGE_SIZE", 2)
    sign_in_as(client, "supervisor")
    page = client.get("/team?sort=name&order=ascending").get_data(as_text=True)
    body = page[page.index("<tbody") : page.index("</tbody>")]
    assert re.findall(r'href="/people/P\d+">([^<]+)</a>', body) == [
        "Alex Officer",
        "Bea Constable",
    ]
    assert "3 people, sorted by name (ascending): 1 to 2 shown" in page
    assert "Page 1 of 2" in page and 'rel="prev"' not in page
    link = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert "page=2" in link and "sort=name" in link and "order=ascending" in link
    assert "Points are as of the latest evaluation" in page

    last = client.get(link).get_data(as_text=True)
    body = last[last.index("<tbody") : last.index("</tbody>")]
    assert re.findall(r'href="/people/P\d+">([^<]+)</a>', body) == ["Dana Mover"]
    assert "Page 2 of 2" in last and 'rel="next"' not in last and 'rel="prev"' in last
    for shown in (page, last):
        assert "Cal Optedout" not in shown and "P102" not in shown
    assert client.get("/team?page=-1&sort=name").status_code == 200


def test_no_evaluation_yet_counts_the_figures_at_the_moment_asked(web_force):
    engine, now = web_force.engine, web_force.now
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE evaluations SET finished_at = NULL"))
    later = now + timedelta(days=40)
    view = team_page(engine, "P200", later, sort="name", descending=False)
    assert view["figures_as_of"] == later
    for row in view["people"]:
        own = person_exposure(engine, row["staff_id"], later, history_days=HISTORY_DAYS)
        assert row["windows"] == own["windows"]
    alex = view["people"][0]  # not the snapshot's 3 in 30 days: 40 days on, none
    assert alex["staff_id"] == "P100" and alex["windows"]["30d"]["exposures"] == 0
    assert alex["windows"]["90d"]["exposures"] > 0
