"""Snapshot figures on both databases, counted exactly as CONTRACT section 2 says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.forcedata import (
    Force,
    absence,
    deployment,
    incident,
    involvement,
    occurrence,
    person,
    rest_day,
    utc,
)

# 12:00 on a summer Tuesday in London is 11:00 UTC; the force's date is 2025-07-01.
AS_OF = "2025-07-01T11:00:00Z"
T = utc(AS_OF)


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(person("S1"), person("S2"))
    yield force
    force.close()


def test_each_window_counts_just_inside_and_not_just_outside(force):
    records = [person("S1")]
    for days in (7, 30, 90, 365, 1826):
        for label, moment in (
            ("in", T - timedelta(days=days) + timedelta(seconds=1)),
            ("out", T - timedelta(days=days)),
        ):
            urn = f"INC-{days}-{label}"
            records += [
                incident(urn, iso(moment), "SUICIDE"),  # tier 2: 2 points
                deployment(urn, "S1", "attending", iso(moment)),
            ]
    records += [  # at the evaluation time counts; a second after it does not
        incident("INC-now", AS_OF, "SUDDEN_DEATH"),
        deployment("INC-now", "S1", "attending", AS_OF),
        incident("INC-later", iso(T + timedelta(seconds=1)), "SUDDEN_DEATH"),
        deployment("INC-later", "S1", "attending", iso(T + timedelta(seconds=1))),
    ]
    force.add(*records)
    force.evaluate(AS_OF, history_days=2000)
    snap = force.snapshot("S1")
    # Window N holds "now" (1 point), its own just-inside edge, and every edge (inside and
    # outside) of the shorter windows: each edge lands exactly where the rule says.
    assert [snap[f"exposures_{w}"] for w in ("7d", "30d", "90d", "365d", "5y")] == [2, 4, 6, 8, 10]
    assert [snap[f"trauma_points_{w}"] for w in ("7d", "30d", "90d", "365d", "5y")] == [
        3.0,
        7.0,
        11.0,
        15.0,
        19.0,
    ]


def test_tier3_exposures_count_the_top_tier(force):
    force.add(
        incident("INC-1", "2025-06-20T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
        incident("INC-2", "2025-03-01T10:00:00Z", "ASB", "FIREARM"),
        incident("INC-3", "2025-06-21T10:00:00Z", "SUICIDE"),
        *[deployment(f"INC-{n}", "S1", "attending") for n in (1, 2, 3)],
    )
    force.evaluate(AS_OF)
    snap = force.snapshot("S1")
    assert (snap["tier3_exposures_30d"], snap["tier3_exposures_365d"]) == (1, 2)


def test_tier2plus_exposures_count_tier_2_and_up_in_the_30_day_window(force):
    def at(delta: timedelta) -> str:
        return iso(T + delta)

    edge = timedelta(days=30)
    records = []
    for urn, moment, code, qualifiers in (
        ("IN-EDGE", at(-edge + timedelta(seconds=1)), "SUICIDE", ""),  # tier 2, just inside
        ("OUT-EDGE", at(-edge), "SUICIDE", ""),  # tier 2, exactly 30 days: outside
        ("TOP", at(-timedelta(days=1)), "SUDDEN_DEATH", "CHILD"),  # tier 3 counts too
        ("LOW", at(-timedelta(days=2)), "SUDDEN_DEATH", ""),  # tier 1: does not
        ("NOW", AS_OF, "SUICIDE", ""),  # at the evaluation time: counts
        ("LATER", at(timedelta(seconds=1)), "SUICIDE", ""),  # after it: not yet
    ):
        records += [incident(urn, moment, code, qualifiers), deployment(urn, "S1", "attending")]
    # An RMS homicide (tier 2) counts like a C&C one.
    records += [
        occurrence("OCC-1", at(-timedelta(days=3)), "1/2"),
        involvement("OCC-1", "S1", "investigator", at(-timedelta(days=3))),
    ]
    force.add(*records)
    force.evaluate(AS_OF)
    snap = force.snapshot("S1")
    assert snap["tier2plus_exposures_30d"] == 4  # IN-EDGE, TOP, NOW, OCC-1
    assert snap["tier3_exposures_30d"] == 1
    assert snap["exposures_30d"] == 5  # LOW as well
    assert force.snapshot("S2")["tier2plus_exposures_30d"] == 0


def test_cancelled_rest_days_count_on_the_rest_day(force):
    force.add(
        rest_day("S1", "2025-07-01", "2025-06-01"),  # today: counts
        rest_day("S1", "2025-06-02", "2025-05-01"),  # 29 days ago: in the 30-day window
        rest_day("S1", "2025-06-01", "2025-05-01"),  # 30 days ago: not in it
        rest_day("S1", "2025-07-02", "2025-06-01"),  # tomorrow: not yet
        rest_day("S1", "2025-06-20", "2025-06-01", status="reinstated"),  # never counts
        rest_day("S1", "2024-07-02", "2024-06-01"),  # 364 days ago
        rest_day("S1", "2024-07-01", "2024-06-01"),  # 365 days ago: out
    )
    force.evaluate(AS_OF)
    snap = force.snapshot("S1")
    assert snap["cancelled_rest_days_30d"] == 2
    assert snap["cancelled_rest_days_90d"] == 3
    assert snap["cancelled_rest_days_365d"] == 4


def test_short_notice_is_fewer_than_15_days(force):
    force.add(
        rest_day("S1", "2025-06-20", "2025-06-06"),  # 14 days' notice: short
        rest_day("S1", "2025-06-21", "2025-06-06"),  # 15 days: not short
        rest_day("S1", "2025-06-22", "2025-06-22"),  # same day: short
        rest_day("S1", "2025-06-25", "2025-06-24", status="reinstated"),  # reinstated
    )
    force.evaluate(AS_OF)
    assert force.snapshot("S1")["short_notice_cancellations_90d"] == 2


def test_an_ongoing_sickness_spell_counts_up_to_the_evaluation_day(force):
    force.add(
        absence("S1", "2025-06-22", None),  # ongoing: 22 June .. 1 July = 10 days
        absence("S1", "2025-03-01", "2025-03-04"),  # 4 days, before the 90-day window
        absence("S1", "2024-06-30", "2024-07-03"),  # 2 of its days fall in the 365 days
        absence("S1", "2025-05-01", "2025-05-02", absence_type="other"),  # not sickness
        absence("S2", "2025-07-02", None),  # starts tomorrow: nothing yet
    )
    force.evaluate(AS_OF)
    s1, s2 = force.snapshot("S1"), force.snapshot("S2")
    assert s1["sickness_days_90d"] == 10  # the window is 3 April .. 1 July
    assert s1["sickness_days_365d"] == 10 + 4 + 2
    assert s1["sickness_spells_365d"] == 3
    assert s1["bradford_factor_365d"] == 3 * 3 * 16
    assert s1["absent_now"] is True
    assert (s2["sickness_days_90d"], s2["absent_now"]) == (0, False)


def test_percentile_is_the_share_of_others_in_the_role_group_with_fewer_points(force):
    force.add(
        person("S3"),
        person("S4"),
        person("S5", role_group="cid"),
        incident("INC-1", "2025-06-01T10:00:00Z", "SUICIDE"),
        incident("INC-2", "2025-06-02T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-1", "S1", "attending"),  # 2 points
        deployment("INC-1", "S2", "attending"),  # 2 points, tied with S1
        deployment("INC-2", "S3", "attending"),  # 1 point
        deployment("INC-1", "S5", "attending"),  # alone in cid
    )  # S4: 0 points
    force.evaluate(AS_OF)
    percentile = {
        s: force.snapshot(s)["trauma_points_365d_role_percentile"]
        for s in ("S1", "S2", "S3", "S4", "S5")
    }
    # response: S4 0, S3 1, S1 2, S2 2 -> others below: S4 0/3, S3 1/3, S1 and S2 2/3
    assert percentile == {"S1": 66.7, "S2": 66.7, "S3": 33.3, "S4": 0.0, "S5": 0.0}


def test_supervisor_and_team_follow_the_version_in_force_at_the_evaluation_time(force):
    force.add(
        person("S1", unit_id="T1", supervisor_id="S8", valid_from="2015-01-01"),
        person("S1", unit_id="T2", supervisor_id="S9", valid_from="2025-03-01"),
        person("S6", valid_from="2025-05-01"),  # joined later
        person("S7", leave_date="2025-02-28"),  # left
    )
    force.evaluate("2025-02-01T12:00:00Z")
    force.evaluate(AS_OF)
    then, now = force.snapshot("S1", "2025-02-01T12:00:00Z"), force.snapshot("S1")
    assert (then["unit_id"], then["supervisor_id"]) == ("T1", "S8")
    assert (now["unit_id"], now["supervisor_id"]) == ("T2", "S9")
    assert force.snapshot("S6", "2025-02-01T12:00:00Z") is None
    assert force.snapshot("S7", "2025-02-01T12:00:00Z") is not None
    assert force.snapshot("S7") is None  # no longer current once they have left

    # Evaluating the past again, after the present, reproduces the past.
    again = force.evaluate("2025-02-01T12:00:00Z")
    assert not again.current
    assert force.snapshot("S1", "2025-02-01T12:00:00Z") == {
        **then,
        "evaluation_id": again.evaluation_id,
    }
    assert force.snapshot("S1")["unit_id"] == "T2"  # the current snapshot is untouched


def test_open_investigations_and_deployments(force):
    force.add(
        occurrence("OCC-1", "2025-05-01T10:00:00Z", "49"),  # open
        occurrence(
            "OCC-2", "2025-05-01T10:00:00Z", "49", status="closed", closed_at="2025-07-05T10:00:00Z"
        ),  # closed after the evaluation time: open then
        occurrence(
            "OCC-3", "2025-05-01T10:00:00Z", "49", status="closed", closed_at="2025-06-05T10:00:00Z"
        ),
        occurrence("OCC-4", "2025-05-01T10:00:00Z", "49"),  # S1 handed it over
        involvement("OCC-1", "S1", "oic", "2025-05-01T11:00:00Z"),
        involvement("OCC-2", "S1", "oic", "2025-05-01T11:00:00Z"),
        involvement("OCC-3", "S1", "oic", "2025-05-01T11:00:00Z"),
        involvement(
            "OCC-4", "S1", "oic", "2025-05-01T11:00:00Z", unassigned_at="2025-06-01T00:00:00Z"
        ),
        involvement("OCC-4", "S2", "oic", "2025-06-01T00:00:00Z"),
        involvement("OCC-1", "S2", "investigator", "2025-05-01T11:00:00Z"),
        incident("INC-1", "2025-06-10T10:00:00Z", "ASB"),
        incident("INC-2", "2025-05-10T10:00:00Z", "ASB"),
        incident("INC-3", "2025-06-25T10:00:00Z", "THEFT"),
        deployment("INC-1", "S1", "attending", "2025-06-10T10:20:00Z"),
        deployment("INC-1", "S1", "supervisor", "2025-06-10T10:30:00Z"),  # same incident
        deployment("INC-2", "S1", "attending", "2025-05-10T10:20:00Z"),  # too long ago
        deployment("INC-3", "S1", "call_handler", None),  # no arrival: the log's time
    )
    force.evaluate(AS_OF)
    s1, s2 = force.snapshot("S1"), force.snapshot("S2")
    assert (s1["open_investigations"], s2["open_investigations"]) == (2, 1)
    assert (s1["deployments_30d"], s2["deployments_30d"]) == (2, 0)


def test_service_years_and_who_the_person_is(force):
    force.add(person("S1", service_start="2015-07-01", rank_or_grade="Sergeant"))
    force.evaluate(AS_OF)
    snap = force.snapshot("S1")
    assert snap["service_years"] == round(3653 / 365.25, 2)  # ten calendar years
    assert (snap["staff_type"], snap["role_group"], snap["rank_or_grade"]) == (
        "officer",
        "response",
        "Sergeant",
    )
