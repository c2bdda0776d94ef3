"""Scoring on both databases: categories, roles, the linked pair, rescoring on a new version."""

from __future__ import annotations

import pytest

from engine.scoring.criteria import parse_criteria
from tests.forcedata import (
    TEST_CRITERIA_TEXT,
    Force,
    deployment,
    incident,
    involvement,
    occurrence,
    person,
)

AS_OF = "2025-07-01T00:00:00Z"


@pytest.fixture
def force(database_url):
    force = Force(database_url)
    force.add(person("S1"), person("S2"), person("S3"))
    yield force
    force.close()


def scored(force, staff_id="S1"):
    return [
        (e["ref"], e["category"], e["tier"], e["role"], e["points"])
        for e in force.exposures(staff_id)
    ]


def test_categories_match_lists_qualifiers_and_the_highest_tier(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"),
        incident("INC-2", "2025-06-02T10:00:00Z", "RTC_FATAL", "ADULT|CHILD"),  # list + qualifier
        incident("INC-3", "2025-06-03T10:00:00Z", "SUDDEN_DEATH", "KNIFE|CHILD"),  # 3 beats 1
        incident("INC-4", "2025-06-04T10:00:00Z", "SUDDEN_DEATH", "FIREARM|CHILD"),  # tie: first
        incident("INC-5", "2025-06-05T10:00:00Z", "SUDDEN_DEATH", "CHILDREN"),  # not CHILD
        incident("INC-6", "2025-06-06T10:00:00Z", "ASB", "KNIFE"),
        incident("INC-7", "2025-06-07T10:00:00Z", "ASB"),  # no category: no exposure
        *[deployment(f"INC-{n}", "S1", "attending") for n in range(1, 8)],
    )
    force.evaluate(AS_OF)
    assert scored(force) == [
        ("INC-1", "sudden_death", 1, "attending", 1.0),
        ("INC-2", "child_death", 3, "attending", 3.0),
        ("INC-3", "child_death", 3, "attending", 3.0),
        ("INC-4", "child_death", 3, "attending", 3.0),
        ("INC-5", "sudden_death", 1, "attending", 1.0),
        ("INC-6", "knife", 1, "attending", 1.0),
    ]


def test_occurrence_categories_use_crime_flags_and_image_grades(force):
    force.add(
        occurrence("OCC-1", "2025-06-01T10:00:00Z", "1/1", crime_flags="DOMESTIC|CHILD"),
        occurrence("OCC-2", "2025-06-02T10:00:00Z", "1/1"),
        occurrence("OCC-3", "2025-06-03T10:00:00Z", "86/2", iioc_category="A"),
        occurrence("OCC-4", "2025-06-04T10:00:00Z", "86/2", iioc_category="C"),
        *[involvement(f"OCC-{n}", "S1", "oic", f"2025-06-0{n}T12:00:00Z") for n in range(1, 5)],
    )
    force.evaluate(AS_OF)
    assert scored(force) == [
        ("OCC-1", "child_death", 3, "oic", 3.0),
        ("OCC-2", "homicide", 2, "oic", 2.0),
        ("OCC-3", "images_ab", 2, "oic", 2.0),
    ]


def test_role_multipliers_and_roles_that_are_not_exposures(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUICIDE"),
        deployment("INC-1", "S1", "first_on_scene"),
        deployment("INC-1", "S2", "supervisor"),
        deployment("INC-1", "S3", "dispatcher"),  # not listed in roles: not an exposure
        occurrence("OCC-1", "2025-06-01T11:00:00Z", "86/2", iioc_category="B"),
        involvement("OCC-1", "S2", "image_reviewer", "2025-06-02T09:00:00Z"),
        involvement("OCC-1", "S3", "interviewer", "2025-06-02T09:00:00Z"),  # not listed
    )
    force.evaluate(AS_OF)
    assert scored(force, "S1") == [("INC-1", "suicide", 2, "first_on_scene", 2.0)]
    assert scored(force, "S2") == [
        ("INC-1", "suicide", 2, "supervisor", 1.0),
        ("OCC-1", "images_ab", 2, "image_reviewer", 2.0),
    ]
    assert scored(force, "S3") == []


def test_two_roles_on_one_incident_are_one_exposure_at_the_higher_points(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUICIDE"),
        deployment("INC-1", "S1", "call_handler", "2025-06-01T10:00:00Z"),
        deployment("INC-1", "S1", "attending", "2025-06-01T10:30:00Z"),
    )
    force.evaluate(AS_OF)
    assert scored(force) == [("INC-1", "suicide", 2, "attending", 2.0)]


def test_a_deployment_and_the_linked_occurrence_are_one_exposure(force):
    force.add(
        # attended a sudden death (tier 1) that became a homicide investigation (tier 2)
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-1", "S1", "first_on_scene", "2025-06-01T10:10:00Z"),
        deployment("INC-1", "S2", "first_on_scene", "2025-06-01T10:10:00Z"),
        occurrence("OCC-1", "2025-06-01T12:00:00Z", "1/1", linked_incident_urn="INC-1"),
        involvement("OCC-1", "S1", "oic", "2025-06-01T12:30:00Z"),
        involvement("OCC-1", "S2", "investigator", "2025-06-01T12:30:00Z"),
        # an occurrence with no link is its own incident
        occurrence("OCC-2", "2025-06-03T12:00:00Z", "1/2"),
        involvement("OCC-2", "S1", "investigator", "2025-06-03T12:30:00Z"),
    )
    force.evaluate(AS_OF)
    # S1: oic on the homicide (2 points) beats first on scene at a sudden death (1 point)
    assert scored(force, "S1") == [
        ("OCC-1", "homicide", 2, "oic", 2.0),
        ("OCC-2", "homicide", 2, "investigator", 1.0),
    ]
    [pair] = [e for e in force.exposures("S1") if e["ref"] == "OCC-1"]
    assert pair["incident_key"] == "cc:INC-1"
    assert pair["feed"] == "rms_occurrences"
    # S2: investigator (2 x 0.5 = 1) ties first on scene (1 x 1 = 1): the higher tier wins
    assert scored(force, "S2") == [("OCC-1", "homicide", 2, "investigator", 1.0)]


def test_exposure_time_is_arrival_else_incident_creation_else_assignment(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUICIDE"),
        deployment("INC-1", "S1", "attending", "2025-06-01T10:45:00Z"),
        deployment("INC-1", "S2", "supervisor", None),
        occurrence("OCC-1", "2025-06-01T12:00:00Z", "1/2"),
        involvement("OCC-1", "S3", "oic", "2025-06-02T08:00:00Z"),
    )
    force.evaluate(AS_OF)
    times = {e["staff_id"]: e["at"] for e in force.exposures()}
    assert {k: v.isoformat() for k, v in times.items()} == {
        "S1": "2025-06-01T10:45:00+00:00",
        "S2": "2025-06-01T10:00:00+00:00",
        "S3": "2025-06-02T08:00:00+00:00",
    }


def test_recoding_an_incident_and_moving_a_link_rescore_incrementally(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"),
        incident("INC-2", "2025-06-02T10:00:00Z", "ASB"),
        deployment("INC-1", "S1", "attending", "2025-06-01T10:10:00Z"),
        deployment("INC-2", "S1", "attending", "2025-06-02T10:10:00Z"),
        occurrence("OCC-1", "2025-06-01T12:00:00Z", "1/2", linked_incident_urn="INC-1"),
        involvement("OCC-1", "S1", "oic", "2025-06-01T12:30:00Z"),
    )
    force.evaluate(AS_OF)
    assert scored(force) == [("OCC-1", "homicide", 2, "oic", 2.0)]
    # The occurrence was linked to the wrong log: it belongs to INC-2.
    force.add(
        occurrence("OCC-1", "2025-06-01T12:00:00Z", "1/2", linked_incident_urn="INC-2"),
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH", "CHILD"),
    )
    report = force.evaluate(AS_OF)
    assert report.mode == "incremental"
    incremental = force.exposures()
    assert scored(force) == [
        ("INC-1", "child_death", 3, "attending", 3.0),
        ("OCC-1", "homicide", 2, "oic", 2.0),
    ]
    assert {e["incident_key"] for e in incremental} == {"cc:INC-1", "cc:INC-2"}
    force.evaluate(AS_OF, full=True)
    assert force.exposures() == incremental


def test_a_criteria_change_rescores_everything_with_the_new_version(force):
    force.add(
        incident("INC-1", "2025-06-01T10:00:00Z", "SUDDEN_DEATH"),
        deployment("INC-1", "S1", "attending"),
    )
    first = force.evaluate(AS_OF)
    old_snapshot = force.snapshot("S1")
    assert {e["criteria_version"] for e in force.exposures()} == {first.criteria_version}

    force.criteria_text = TEST_CRITERIA_TEXT.replace(
        "  - id: sudden_death\n    label: Sudden death\n    tier: 1",
        "  - id: sudden_death\n    label: Sudden death\n    tier: 2",
    )
    force.criteria = parse_criteria(force.criteria_text)
    second = force.evaluate("2025-07-02T00:00:00Z")

    assert second.mode == "full" and second.criteria_version != first.criteria_version
    assert scored(force) == [("INC-1", "sudden_death", 2, "attending", 2.0)]
    assert {e["criteria_version"] for e in force.exposures()} == {second.criteria_version}
    # The old snapshot keeps the version it was made with.
    assert force.snapshot("S1", AS_OF)["criteria_version"] == first.criteria_version
    assert old_snapshot["criteria_version"] == first.criteria_version
    assert force.snapshot("S1")["criteria_version"] == second.criteria_version
    assert force.snapshot("S1")["trauma_points_90d"] == 2.0


def test_history_horizon_keeps_only_the_configured_years(force):
    force.add(
        incident("INC-OLD", "2019-06-01T10:00:00Z", "SUICIDE"),
        incident("INC-NEW", "2024-06-01T10:00:00Z", "SUICIDE"),
        deployment("INC-OLD", "S1", "attending"),
        deployment("INC-NEW", "S1", "attending"),
    )
    force.evaluate(AS_OF)  # 5 years by default
    assert [e["ref"] for e in force.exposures()] == ["INC-NEW"]
    force.evaluate(AS_OF, history_days=int(10 * 365.25))  # a longer history rescores
    assert [e["ref"] for e in force.exposures()] == ["INC-NEW", "INC-OLD"]
    assert force.snapshot("S1")["exposures_5y"] == 1  # the 5y window is still 5 years
