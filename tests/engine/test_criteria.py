"""criteria.yaml: validation names file and line; matching follows CONTRACT section 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.scoring.criteria import Criteria, load_criteria, parse_criteria
from engine.yamlfile import RuleFileError
from tests.forcedata import TEST_CRITERIA, TEST_CRITERIA_TEXT
from trauma_tracker.settings import SHIPPED_RULES

GOOD = """\
tiers: {1: 1, 2: 2, 3: 3}
roles: {attending: 1.0, investigator: 0.5}
categories:
  - id: child_death
    label: Death of a child
    tier: 3
    match:
      - {feed: cc_incidents, closing_code: [SUDDEN_DEATH, RTC_FATAL], qualifier: CHILD}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        parse_criteria(textwrap.dedent(text), "rules/criteria.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_shipped_criteria_are_valid_and_cover_the_three_tiers():
    criteria, text = load_criteria(SHIPPED_RULES)
    assert {c.tier for c in criteria.categories} == {1, 2, 3}
    assert "weights are the force's to set" in text.lower()
    assert "Weiss et al. (2010)" in text
    # Every category carries a comment giving its basis.
    for category in criteria.categories:
        block = text.split(f"- id: {category.id}\n", 1)[1].split("\n")
        assert block[0].strip().startswith("#"), category.id


@pytest.mark.parametrize(
    ("record", "category", "tier"),
    [
        # a routine armed operation is counted, but is not a threat to the officer's own life
        ({"closing_code": "SUSPICIOUS", "qualifiers": "FIREARM"}, "armed_operation", 1),
        ({"closing_code": "SERIOUS_ASSAULT", "qualifiers": "FIREARM"}, "serious_violence", 1),
        # what TRiM is for: shots fired, an officer directly threatened or seriously hurt
        ({"closing_code": "SUSPICIOUS", "qualifiers": "FIREARM|FIREARM_DISCHARGE"}, None, 3),
        ({"closing_code": "DOMESTIC", "qualifiers": "OFFICER_THREATENED"}, "threat_to_life", 3),
        ({"closing_code": "ASSAULT", "qualifiers": "OFFICER_SERIOUSLY_INJURED"}, None, 3),
        # an injury of unknown severity at a serious assault: tier 2
        ({"closing_code": "SERIOUS_ASSAULT", "qualifiers": "OFFICER_INJURED"}, None, 2),
        ({"closing_code": "ASSAULT", "qualifiers": "OFFICER_INJURED"}, None, None),
        # a threat to a member of the public's life is not a threat to the officer's
        ({"closing_code": "CONCERN_FOR_WELFARE", "qualifiers": "THREAT_TO_LIFE"}, None, None),
    ],
)
def test_the_shipped_criteria_keep_tier_3_for_what_trim_is_for(record, category, tier):
    criteria, _ = load_criteria(SHIPPED_RULES)
    found = criteria.category_of("cc_incidents", record)
    assert (found.tier if found else None) == tier
    if category is not None:
        assert found.id == category


def test_unknown_top_level_key_names_its_line():
    assert problems(GOOD + "colour: red\n") == ["rules/criteria.yaml:9: unknown key 'colour'"]


def test_unknown_key_in_a_category_names_its_line():
    text = GOOD.replace("    tier: 3\n", "    tier: 3\n    weight: 2\n")
    assert problems(text) == ["rules/criteria.yaml:7: unknown key 'weight' in categories.0"]


def test_unknown_feed_names_its_line():
    text = GOOD + "      - {feed: cc_incidentz, closing_code: SUICIDE}\n"
    [message] = problems(text)
    assert message.startswith("rules/criteria.yaml:9: unknown feed 'cc_incidentz'")


def test_unknown_field_names_its_line_and_the_fields_allowed():
    text = GOOD + "      - feed: rms_occurrences\n        hocr_cde: '1/1'\n"
    [message] = problems(text)
    assert message.startswith(
        "rules/criteria.yaml:10: unknown field 'hocr_cde' for rms_occurrences"
    )
    assert "hocr_code" in message


def test_list_fields_are_tested_through_their_singular_name():
    text = GOOD + "      - {feed: rms_occurrences, crime_flags: CHILD}\n"
    [message] = problems(text)
    assert "use `crime_flag` to test membership of crime_flags" in message


def test_a_value_that_can_never_match_is_an_error():
    text = GOOD + "      - {feed: rms_occurrences, iioc_category: D}\n"
    assert problems(text) == ["rules/criteria.yaml:9: iioc_category: 'D' is not one of A, B, C"]


def test_tier_without_points_names_the_categorys_tier_line():
    text = GOOD.replace("tiers: {1: 1, 2: 2, 3: 3}", "tiers: {1: 1, 2: 2}")
    [message] = problems(text)
    assert message.startswith("rules/criteria.yaml:6: category 'child_death' has tier 3")
    assert "no points" in message


def test_role_multiplier_not_a_number_names_its_line():
    text = GOOD.replace("investigator: 0.5}", "investigator: half}")
    assert problems(text) == [
        "rules/criteria.yaml:2: roles.investigator: role multiplier must be a number, not 'half'"
    ]


@pytest.mark.parametrize("written", [".inf", ".nan", "-.inf", "1e999", "1001.0", "-1.0"])
def test_a_multiplier_not_finite_or_out_of_range_names_its_line(written):
    text = GOOD.replace("investigator: 0.5}", f"investigator: {written}}}")
    (problem,) = problems(text)
    assert problem.startswith("rules/criteria.yaml:2: roles.investigator:"), problem


def test_a_quoted_number_is_not_a_multiplier():
    text = GOOD.replace("investigator: 0.5}", 'investigator: "0.5"}')
    assert "must be a number, not '0.5'" in problems(text)[0]


def test_unknown_role_is_an_error():
    text = GOOD.replace("investigator: 0.5}", "investigatr: 0.5}")
    assert "unknown role 'investigatr'" in problems(text)[0]


def test_duplicate_category_id_names_the_second_one():
    text = GOOD + (
        "  - id: child_death\n    label: Again\n    tier: 1\n    match:\n"
        "      - {feed: cc_incidents, closing_code: SUDDEN_DEATH}\n"
    )
    [message] = problems(text)
    assert message.startswith("rules/criteria.yaml:9: duplicate category id 'child_death'")


def test_duplicate_yaml_key_and_broken_yaml_name_their_lines():
    assert problems("tiers: {1: 1}\ntiers: {2: 2}\n") == [
        "rules/criteria.yaml:2: duplicate key 'tiers' (first at line 1)"
    ]
    assert problems("tiers: [1\nroles: {}\n")[0].startswith("rules/criteria.yaml:2: not valid YAML")


def test_every_problem_is_reported_at_once():
    text = GOOD.replace("investigator: 0.5}", "investigator: x}") + "extra: 1\n"
    assert len(problems(text)) == 2


def test_a_missing_file_names_the_file(tmp_path: Path):
    with pytest.raises(RuleFileError, match="criteria.yaml: can't read"):
        load_criteria(tmp_path)


def test_version_is_a_content_hash_that_ignores_comments_and_layout():
    reformatted = "# a comment\n" + TEST_CRITERIA_TEXT.replace(
        "{1: 1, 2: 2, 3: 3}", "{1: 1,  2: 2, 3: 3}"
    )
    assert parse_criteria(reformatted).version == TEST_CRITERIA.version
    changed = TEST_CRITERIA_TEXT.replace("investigator: 0.5", "investigator: 0.6")
    assert parse_criteria(changed).version != TEST_CRITERIA.version


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"closing_code": "SUDDEN_DEATH", "qualifiers": None}, "sudden_death"),
        # a list of codes, and a qualifier among several
        ({"closing_code": "RTC_FATAL", "qualifiers": "ADULT|CHILD"}, "child_death"),
        # a qualifier is membership, not a substring
        ({"closing_code": "SUDDEN_DEATH", "qualifiers": "CHILDREN"}, "sudden_death"),
        # several categories match: the highest tier wins
        ({"closing_code": "SUDDEN_DEATH", "qualifiers": "KNIFE|CHILD"}, "child_death"),
        # two tier-3 categories match: the first listed wins
        ({"closing_code": "SUDDEN_DEATH", "qualifiers": "FIREARM|CHILD"}, "child_death"),
        ({"closing_code": "ASB", "qualifiers": "FIREARM"}, "threat_to_life"),
        ({"closing_code": "ASB", "qualifiers": None}, None),
    ],
)
def test_incident_categories(record, expected):
    category = TEST_CRITERIA.category_of("cc_incidents", record)
    assert (category.id if category else None) == expected


def test_occurrence_categories_use_crime_flags_and_image_grades():
    def category(**record):
        found = TEST_CRITERIA.category_of("rms_occurrences", record)
        return found.id if found else None

    assert category(hocr_code="1/1", crime_flags="CHILD|DOMESTIC") == "child_death"
    assert category(hocr_code="1/1", crime_flags=None) == "homicide"
    assert category(hocr_code="86/2", iioc_category="B") == "images_ab"
    assert category(hocr_code="86/2", iioc_category="C") is None


def test_points_are_tier_points_times_the_role_multiplier():
    assert TEST_CRITERIA.points("child_death", "attending") == 3.0
    assert TEST_CRITERIA.points("child_death", "investigator") == 1.5
    assert TEST_CRITERIA.points("sudden_death", "call_handler") == 0.25
    assert TEST_CRITERIA.points("sudden_death", "dispatcher") is None  # not an exposure


def test_criteria_model_is_frozen():
    with pytest.raises(Exception, match="frozen"):
        TEST_CRITERIA.tiers = {}  # type: ignore[misc]
    assert isinstance(TEST_CRITERIA, Criteria)
