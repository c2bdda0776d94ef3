"""The durable_rules adapter: every rule a person meets fires, memory is cleared, and the
engine agrees with the Python explanation on generated rules and snapshots."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules import durable
from engine.rules.conditions import Comparison, Group, holds, to_data
from engine.rules.matching import Subject, match, snapshot_subjects
from engine.rules.pack import pack_from_definitions
from tests.engine.rulekit import THREE_RULES, default_pack, snapshot

ROUTING = {"recipients": {"supervisor": {"channels": ["teams"]}}}


def rule(rule_id: str, when, on: str = "snapshot") -> dict:
    return {
        "id": rule_id,
        "title": rule_id,
        "severity": "low",
        "on": on,
        "when": when,
        "notify": ["supervisor"],
        "cooldown": "0d",
        "follow_up": [],
        "max_age": "7d" if on == "exposure" else None,
    }


def test_one_person_meeting_three_rules_gets_three_firings():
    pack = default_pack()
    result = match(pack, snapshot_subjects(pack, [snapshot("S1", **THREE_RULES), snapshot("S2")]))
    fired = sorted((f.rule.id, f.subject.staff_id) for f in result.firings)
    assert fired == [
        ("cluster-30d", "S1"),
        ("combined-indicator", "S1"),
        ("peer-high-exposure", "S1"),
    ]
    assert result.disagreements == []
    assert all(f.explanation["result"] is True for f in result.firings)


def test_every_fact_of_several_full_batches_fires_and_memory_is_cleared():
    pack = pack_from_definitions(
        [rule("all", "service_years >= 0"), rule("some", "tier2plus_exposures_30d >= 1")], ROUTING
    )
    count = durable.BATCH * 2 + 234
    snaps = [
        snapshot(f"P{i}", service_years=float(i), tier2plus_exposures_30d=i % 2)
        for i in range(count)
    ]
    result = match(pack, snapshot_subjects(pack, snaps))
    everyone = {f.subject.staff_id for f in result.firings if f.rule.id == "all"}
    odd = {f.subject.staff_id for f in result.firings if f.rule.id == "some"}
    assert everyone == {f"P{i}" for i in range(count)}
    assert odd == {f"P{i}" for i in range(1, count, 2)}
    assert durable.working_memory(pack) == []


def test_an_or_whose_branches_both_hold_fires_once():
    pack = pack_from_definitions(
        [rule("either", {"any": ["trauma_points_90d >= 1", "exposures_30d >= 1"]})], ROUTING
    )
    result = match(
        pack, snapshot_subjects(pack, [snapshot("S1", trauma_points_90d=5.0, exposures_30d=5)])
    )
    assert [f.rule.id for f in result.firings] == ["either"]


def test_snapshot_rules_never_see_exposures_nor_the_reverse():
    pack = pack_from_definitions(
        [rule("snap", "service_years >= 0"), rule("expo", "tier >= 1", on="exposure")], ROUTING
    )
    subjects = [
        Subject("snapshot", "S1", {"service_years": 3.0}),
        Subject("exposure", "S1", {"tier": 3, "service_years": 3.0, "age_days": 0.5}),
        Subject("exposure", "S1", {"tier": 3, "age_days": 7.5}),  # older than max_age
    ]
    fired = sorted((f.rule.id, subjects.index(f.subject)) for f in match(pack, subjects).firings)
    assert fired == [("expo", 1), ("snap", 0)]


def test_a_missing_value_is_false_under_every_operator_and_true_under_not():
    conditions = [
        "service_years != 3",
        "service_years < 100",
        'staff_type != "officer"',
        "absent_now != true",
        "tier2plus_exposures_30d in [0, 1]",
    ]
    pack = pack_from_definitions(
        [rule(f"r{i}", c) for i, c in enumerate(conditions)]
        + [rule(f"n{i}", {"not": c}) for i, c in enumerate(conditions)],
        ROUTING,
    )
    result = match(pack, [Subject("snapshot", "S1", {})])
    assert result.disagreements == []
    assert sorted(f.rule.id for f in result.firings) == [f"n{i}" for i in range(len(conditions))]


# --- generated rules and snapshots -----------------------------------------------------------

NUMBERS = ("trauma_points_90d", "service_years", "tier2plus_exposures_30d", "open_investigations")
TEXTS = ("staff_type", "role_group")
THRESHOLDS = (0, 1, 2, 3, 2.5, 12, 12.0, 95, -1, 0.1)
WORDS = ("officer", "staff", "response", 'quo"te', "back\\slash", "café", "")

numeric = st.one_of(
    st.tuples(
        st.sampled_from(NUMBERS),
        st.sampled_from([">=", ">", "<=", "<", "==", "!="]),
        st.sampled_from(THRESHOLDS),
    ),
    st.tuples(
        st.sampled_from(NUMBERS),
        st.just("in"),
        st.lists(st.sampled_from(THRESHOLDS), min_size=1, max_size=3).map(tuple),
    ),
)
textual = st.one_of(
    st.tuples(st.sampled_from(TEXTS), st.sampled_from(["==", "!="]), st.sampled_from(WORDS)),
    st.tuples(
        st.sampled_from(TEXTS),
        st.just("in"),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(tuple),
    ),
)
boolean = st.tuples(st.just("absent_now"), st.sampled_from(["==", "!="]), st.booleans())
comparisons = st.one_of(numeric, textual, boolean).map(lambda t: Comparison(*t))
trees = st.recursive(
    comparisons,
    lambda children: st.one_of(
        st.builds(
            lambda kind, items: Group(kind, tuple(items)),
            st.sampled_from(["all", "any"]),
            st.lists(children, min_size=1, max_size=3),
        ),
        children.map(lambda child: Group("not", (child,))),
    ),
    max_leaves=6,
)

number_values = st.one_of(
    st.sampled_from(THRESHOLDS),
    st.integers(-3, 100),
    st.floats(-5, 100),
    st.sampled_from([None, "12", True, math.inf, math.nan]),  # wrong types count as missing
)
snapshots = st.fixed_dictionaries(
    {},
    optional={
        **{name: number_values for name in NUMBERS},
        **{name: st.one_of(st.sampled_from(WORDS), st.none(), st.just(3)) for name in TEXTS},
        "absent_now": st.one_of(st.booleans(), st.none(), st.just(1)),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trees, min_size=1, max_size=3), st.lists(snapshots, min_size=1, max_size=15))
def test_engine_and_python_agree_on_generated_rules_and_snapshots(tree_list, figures):
    pack = pack_from_definitions(
        [rule(f"g{i}", to_data(t)) for i, t in enumerate(tree_list)], ROUTING
    )
    people = [{"staff_id": f"P{i}", **values} for i, values in enumerate(figures)]
    subjects = snapshot_subjects(pack, people)
    result = match(pack, subjects)
    assert result.disagreements == []
    fired = {(f.rule.id, f.subject.staff_id) for f in result.firings}
    expected = {
        (r.id, s.staff_id) for r in pack.rules for s in subjects if holds(r.condition, s.values)
    }
    assert fired == expected
    assert all(f.explanation["result"] for f in result.firings)


def test_numbers_in_exponent_notation_reach_the_engine_intact():
    # durable_rules 2.0.28 crashes the process on `1e-05` (no fraction) and misreads others;
    # the adapter writes `1.0e-05`. Thresholds go through the same writer as facts.
    pack = pack_from_definitions(
        [
            rule("tiny", "service_years < 0.0001"),
            rule("zero", "service_years in [0]"),
            rule("huge", "trauma_points_5y >= 10000000000000000"),
            rule("any", "trauma_points_90d >= 0"),
        ],
        ROUTING,
    )
    values = (1e-05, -5e-324, 5e-324, 1.5e-07, 1e16, 1e300, -1e-05)
    people = [
        {"staff_id": f"P{i}", "service_years": v, "trauma_points_5y": v, "trauma_points_90d": 0}
        for i, v in enumerate(values)
    ]
    result = match(pack, snapshot_subjects(pack, people))
    assert result.disagreements == []
    fired = {(f.rule.id, f.subject.staff_id) for f in result.firings}
    assert {s for r, s in fired if r == "any"} == {f"P{i}" for i in range(len(values))}
    assert {s for r, s in fired if r == "tiny"} == {"P0", "P1", "P2", "P3", "P6"}
    assert {s for r, s in fired if r == "huge"} == {"P4", "P5"}
    assert {s for r, s in fired if r == "zero"} == set()
    assert durable.to_json({"text": "1e5", "n": 1e-05}) == '{"text": "1e5", "n": 1.0e-05}'
