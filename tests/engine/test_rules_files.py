"""Rule files: every kind of mistake is reported with its file and line; the default pack holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.rules.conditions import ConditionError, parse, parse_comparison, to_data
from engine.rules.fields import fields_for
from engine.rules.pack import load_pack
from engine.rules.testing import run_tests
from engine.yamlfile import RuleFileError
from tests.engine.rulekit import copy_rules, default_pack

GOOD = """\
id: long-hours
title: Long hours
severity: medium
when:
  all:
    - trauma_points_30d >= 5
    - any:
        - cancelled_rest_days_30d >= 2
        - not: absent_now == true
notify: [supervisor]
cooldown: 14d
tests:
  - given: {trauma_points_30d: 5, cancelled_rest_days_30d: 2}
    expect: fire
"""


def problems_for(tmp_path: Path, text: str, name: str = "new.yaml") -> list[str]:
    rules = copy_rules(tmp_path / "rules")
    (rules / "interventions" / name).write_text(text)
    with pytest.raises(RuleFileError) as caught:
        load_pack(rules)
    return [str(p) for p in caught.value.problems]


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def test_the_shipped_pack_is_valid_and_its_tests_pass():
    pack = default_pack()
    assert {r.id for r in pack.rules} == {
        "trim-check",
        "cluster-30d",
        "combined-indicator",
        "peer-high-exposure",
    }
    report = run_tests(pack)
    assert report.failures == [] and report.disagreements == []
    assert report.passed == sum(len(r.tests) for r in pack.rules) >= 8


def test_on_exposure_is_read_as_text_not_as_yaml_1_1_true():
    trim = default_pack().by_id["trim-check"]
    assert trim.on == "exposure"
    assert [c for c in trim.follow_up] and trim.max_age.days == 7


def test_a_good_new_file_joins_the_pack(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    (rules / "interventions" / "long-hours.yaml").write_text(GOOD)
    pack = load_pack(rules)
    assert "long-hours" in pack.by_id
    assert pack.ruleset_hash != default_pack().ruleset_hash


def test_comments_and_layout_do_not_change_the_ruleset_hash(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    path = rules / "interventions" / "cluster.yaml"
    text = path.read_text()
    path.write_text(
        "# a new comment\n" + text.replace("notify: [supervisor]", "notify:\n  - supervisor")
    )
    assert load_pack(rules).ruleset_hash == default_pack().ruleset_hash
    path.write_text(text.replace(">= 3", ">= 4"))
    changed = load_pack(rules)
    assert changed.ruleset_hash != default_pack().ruleset_hash
    assert changed.by_id["cluster-30d"].version != default_pack().by_id["cluster-30d"].version


def test_yaml_syntax_error_names_its_line(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("title: Long hours", "title: Long: hours")))
    assert problem == (
        f"{tmp_path}/rules/interventions/new.yaml:2: not valid YAML: "
        "mapping values are not allowed here"
    )
    text = GOOD.replace("severity: medium", "severity: [medium")
    problem = only(problems_for(tmp_path / "again", text))
    assert "new.yaml:4: not valid YAML: expected ',' or ']'" in problem
    assert "(while parsing a flow sequence at line 3)" in problem


def test_unknown_key_names_its_line_and_suggests(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("cooldown: 14d", "cooldwn: 14d")))
    assert problem.endswith("new.yaml:11: unknown key 'cooldwn' (did you mean cooldown?)")


def test_unknown_field_names_its_line(tmp_path):
    problem = only(
        problems_for(tmp_path, GOOD.replace("trauma_points_30d >=", "trauma_point_30d >="))
    )
    assert "new.yaml:6: 'trauma_point_30d >= 5': unknown field 'trauma_point_30d'" in problem
    assert "did you mean trauma_points_30d" in problem


def test_bad_operator_names_its_line(tmp_path):
    problem = only(
        problems_for(
            tmp_path, GOOD.replace("cancelled_rest_days_30d >= 2", "cancelled_rest_days_30d => 2")
        )
    )
    assert "new.yaml:8:" in problem and "bad operator '=>'" in problem


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("trauma_points_30d >= 5", 'trauma_points_30d >= "five"', 6, "is a number"),
        ("absent_now == true", "absent_now == 1", 9, "true/false"),
        ("severity: medium", "severity: urgent", 3, "severity: expected 'low', 'medium' or 'high'"),
        ("cooldown: 14d", "cooldown: 14", 11, "cooldown: Input should be a valid string"),
        ("cooldown: 14d", "cooldown: fortnight", 11, "expected a duration like 15m"),
        ("expect: fire", "expect: yes", 14, "expect: expected 'fire' or 'no_fire'"),
        ("cancelled_rest_days_30d: 2}", "cancelled_rest_days_30d: two}", 13, "expected a number"),
    ],
)
def test_value_of_the_wrong_type_names_its_line(tmp_path, old, new, line, words):
    problem = only(problems_for(tmp_path, GOOD.replace(old, new)))
    assert f"new.yaml:{line}:" in problem and words in problem


def test_duplicate_id_across_files_names_both(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("long-hours", "cluster-30d")))
    assert "new.yaml:1: duplicate id 'cluster-30d' (also in " in problem
    assert "cluster.yaml:5)" in problem


def test_notify_naming_an_unknown_recipient_names_its_line(tmp_path):
    text = GOOD.replace("notify: [supervisor]", "notify:\n  - supervisor\n  - occupational_health")
    problem = only(problems_for(tmp_path, text))
    assert "new.yaml:12: notify names 'occupational_health', not a recipient" in problem


def test_every_problem_in_every_file_is_reported_at_once(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    (rules / "interventions" / "a.yaml").write_text(GOOD.replace("cooldown", "cooldwn"))
    (rules / "interventions" / "b.yaml").write_text(
        GOOD.replace("long-hours", "other").replace(">= 5", "=< 5").replace("medium", "huge")
    )
    with pytest.raises(RuleFileError) as caught:
        load_pack(rules)
    found = sorted(f"{Path(p.file).name}:{p.line}" for p in caught.value.problems)
    assert found == ["a.yaml:11", "b.yaml:3"]  # b's condition is checked once its keys are valid


def test_routing_problems_name_their_lines(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    routing = rules / "routing.yaml"
    routing.write_text(routing.read_text().replace("to: wellbeing}", "to: welbeing}"))
    with pytest.raises(RuleFileError) as caught:
        load_pack(rules)
    (problem,) = caught.value.problems
    assert problem.line == 10 and "escalate.to names 'welbeing'" in problem.message


def test_max_age_is_only_for_exposure_rules(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("cooldown: 14d", "max_age: 3d")))
    assert "max_age applies only to `on: exposure` rules" in problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("staff_type == officer", 'quote text values: "officer"'),
        ('staff_type >= "officer"', "is text: use ==, != or in"),
        ('role_group in "cid"', "`in` needs a list"),
        ("tier in []", "at least one value"),
        ("tier >= 3 extra", "unexpected 'extra' after the value"),
        ("tier", "bad operator 'nothing'"),
    ],
)
def test_condition_parser_explains_what_is_wrong(text, message):
    with pytest.raises(ConditionError) as caught:
        parse_comparison(text, fields_for("exposure"), 3)
    assert message in str(caught.value) and caught.value.line == 3


def test_conditions_round_trip_through_their_canonical_form():
    fields = fields_for("exposure")
    raw = {"any": ['role in ["oic", "attending"]', {"not": ["tier < 2.5", "absent_now == false"]}]}
    tree = parse(raw, fields, {}, ("when",))
    assert parse(to_data(tree), fields, {}, ("when",)) == tree


def test_rules_test_reports_the_conditions_that_went_the_other_way(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    path = rules / "interventions" / "combined-indicator.yaml"
    path.write_text(path.read_text().replace("trauma_points_90d: 14,", "trauma_points_90d: 11,"))
    report = run_tests(load_pack(rules))
    (failure,) = report.failures
    text = str(failure)
    assert "combined-indicator.yaml:" in text and "high exposure and lost rest days" in text
    assert "expected to fire, it did not" in text
    assert "trauma_points_90d >= 12 (actual 11: false)" in text
    assert "cancelled_rest_days_90d" not in text  # that one held


# --- hostile and careless files (issue 15 section 3, issue 14 section 4) ---------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nid: lol\n"


def test_a_billion_laughs_file_is_refused_quickly_with_its_line(tmp_path):
    started = time.monotonic()
    problem = only(problems_for(tmp_path, billion_laughs()))
    assert time.monotonic() - started < 2
    assert problem.endswith("new.yaml:1: aliases (*name) expand to more than 10000 values")


def test_too_many_aliases_are_refused_at_the_first_one_past_the_bound(tmp_path):
    text = "x: &x 1\nys:\n" + "".join("  - *x\n" for _ in range(150))
    problem = only(problems_for(tmp_path, text))
    assert problem.endswith("new.yaml:103: more than 100 aliases (*name); write the values out")


def test_a_file_nested_5000_levels_is_refused_with_its_line(tmp_path):
    started = time.monotonic()
    text = GOOD.replace("cooldown: 14d", "deep:\n  " + "[" * 5000 + "]" * 5000)
    problem = only(problems_for(tmp_path, text))
    assert time.monotonic() - started < 2
    assert problem.endswith("new.yaml:12: nested more than 40 levels deep")
    block = "- " * 5000 + "x\n"  # a list in a list in a list ...
    assert only(problems_for(tmp_path / "block", block)).endswith(
        "new.yaml:1: nested more than 40 levels deep"
    )


def test_an_alias_that_contains_itself_is_refused(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("cooldown: 14d", "loop: &loop [*loop]")))
    assert "new.yaml:11: nested more than 40 levels deep (through aliases)" in problem


def test_a_rule_file_over_the_size_cap_is_refused_unread(tmp_path):
    text = GOOD + "# " + "x" * (1024 * 1024) + "\n"
    problem = only(problems_for(tmp_path, text))
    assert problem == f"{tmp_path}/rules/interventions/new.yaml: larger than 1024 KiB: " + (
        "a rule file is not that big"
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2025-02-30", "can't read '2025-02-30': day is out of range for month"),
        ("9" * 5000, "can't read '999999999999999999999999999999... (5000 characters)'"),
    ],
)
def test_a_yaml_value_python_cannot_build_is_a_problem_with_its_line(tmp_path, value, words):
    problem = only(problems_for(tmp_path, GOOD.replace("cooldown: 14d", f"extra: {value}")))
    assert f"new.yaml:11: {words}" in problem


@pytest.mark.parametrize(
    ("threshold", "shown", "words"),
    [
        ("1e999", "1e999", "is not a finite number"),
        ("-1e999", "-1e999", "is not a finite number"),
        ("-9223372036854775809", "-9223372036854775809", "is out of range"),
        ("9223372036854775808", "9223372036854775808", "is out of range"),
        ("9" * 5000, "9" * 30 + "... (5000 characters)", "is out of range"),
    ],
)
def test_a_threshold_out_of_the_engines_range_is_a_validation_error(
    tmp_path, threshold, shown, words
):
    text = GOOD.replace("trauma_points_30d >= 5", f"trauma_points_30d >= {threshold}")
    problem = only(problems_for(tmp_path, text))
    assert "new.yaml:6: " in problem and f": {shown} {words}" in problem
    assert len(problem.split("new.yaml:6: ")[1]) < 250


def test_a_list_value_out_of_range_is_a_validation_error(tmp_path):
    text = GOOD.replace("trauma_points_30d >= 5", "trauma_points_30d in [1, 1e400]")
    assert "1e400 is not a finite number" in only(problems_for(tmp_path, text))


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+999", "100000000000000000000"])
def test_a_test_value_out_of_range_is_a_validation_error(tmp_path, value):
    text = GOOD.replace("cancelled_rest_days_30d: 2}", f"cancelled_rest_days_30d: {value}}}")
    problem = only(problems_for(tmp_path, text))
    assert "new.yaml:13: tests[0].given.cancelled_rest_days_30d: " in problem
    assert "is not a finite number" in problem or "is out of range" in problem


def test_a_duration_beyond_a_century_is_a_validation_error(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("cooldown: 14d", "cooldown: 99999999999d")))
    assert "new.yaml:11: cooldown: 99999999999d is longer than 100 years" in problem


@pytest.mark.parametrize(
    ("block", "line"),
    [
        (
            "  all:\n    - trauma_points_30d >= 5\n    - any\n"
            "        - cancelled_rest_days_30d >= 3\n        - open_investigations >= 2\n",
            7,
        ),
        ("  any\n    - cancelled_rest_days_30d >= 3\n    - open_investigations >= 2\n", 4),
        ("  all:\n    - trauma_points_30d >= 5\n    - not\n", 7),
    ],
)
def test_a_group_missing_its_colon_says_so(tmp_path, block, line):
    start = GOOD.index("  all:")
    text = GOOD[:start] + block + GOOD[GOOD.index("notify:") :]
    problem = only(problems_for(tmp_path, text))
    assert f"new.yaml:{line}: " in problem
    assert "needs a colon to start a group: write `" in problem
    assert "bad operator" not in problem


def test_a_nul_byte_is_a_problem_with_its_line(tmp_path):
    problem = only(problems_for(tmp_path, GOOD.replace("title: Long hours", "title: Long\x00")))
    assert problem.endswith(
        "new.yaml:2: not valid YAML: the character '\\x00' is not allowed in a YAML file"
    )


def test_a_key_holding_a_newline_is_shown_escaped_on_one_line(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    (rules / "routing.yaml").write_text('recipients:\n  "well\\nbeing": 5\n')
    with pytest.raises(RuleFileError) as caught:
        load_pack(rules)
    shown = [str(p) for p in caught.value.problems if "well" in str(p)]
    assert shown == [
        f"{rules}/routing.yaml:2: recipients.well\\nbeing: Input should be a "
        + ("valid dictionary or instance of RecipientModel")
    ]


@pytest.mark.parametrize(
    ("condition", "count"),
    [
        ("trauma_points_30d in [" + ", ".join(str(n) for n in range(201)) + "]", 201),
        ("any:\n" + "".join(f"        - trauma_points_30d >= {n}\n" for n in range(600)), 600),
    ],
)
def test_a_rule_too_wide_for_the_engine_is_refused_quickly(tmp_path, condition, count):
    text = GOOD.replace("- trauma_points_30d >= 5", f"- {condition.rstrip()}")
    started = time.monotonic()
    problem = only(problems_for(tmp_path, text))
    assert time.monotonic() - started < 2
    assert problem.endswith(
        f"new.yaml:4: when: {count + 2} comparisons (each value of an `in` list counts); a rule "
        "has at most 200, beyond which the engine can't compile it"
    )


def test_a_rule_of_200_comparisons_compiles_and_runs(tmp_path):
    values = ", ".join(str(n) for n in range(197))
    rules = copy_rules(tmp_path / "rules")
    text = GOOD.replace("- trauma_points_30d >= 5", f"- trauma_points_30d in [{values}]")
    (rules / "interventions" / "new.yaml").write_text(
        text.replace("trauma_points_30d: 5", "trauma_points_30d: 196")
    )
    report = run_tests(load_pack(rules))
    assert report.failures == [] and report.disagreements == []
