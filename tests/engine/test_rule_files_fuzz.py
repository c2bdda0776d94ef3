"""Generated rule files through `rules validate`: whatever is in them, the command answers
valid (exit 0) or lists problems (exit 1), and no exception escapes (issue 15 section 5).
A pack that validates is run through `rules test` as well, which reaches the engine.

Three kinds of file: text that is barely YAML, YAML documents of any shape, and rules that
are nearly right (real keys, conditions from the grammar, hostile numbers and nesting).
The example counts keep the whole file to a few seconds of CPU (10 each; runs of 150 to 200
per test found nothing more).
"""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.conditions import GROUPS, OPERATORS
from engine.rules.fields import fields_for
from tests.engine.rulekit import copy_rules
from trauma_tracker.cli import main

FUZZ = settings(
    max_examples=10,
    deadline=None,
    database=None,  # no .hypothesis folder left in the repository
    suppress_health_check=[HealthCheck.too_slow],
)

_SHIPPED = Path(tempfile.mkdtemp(prefix="tt-fuzz-rules-")) / "rules"
copy_rules(_SHIPPED)
atexit.register(shutil.rmtree, _SHIPPED.parent, ignore_errors=True)


def validate(name: str, text: str | bytes) -> None:
    """Writes `text` as `name` into a copy of the shipped rules and runs `rules validate`."""
    with tempfile.TemporaryDirectory(prefix="tt-fuzz-") as scratch:
        folder = Path(scratch) / "rules"
        shutil.copytree(_SHIPPED, folder)
        target = folder / name
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = CliRunner().invoke(main, ["rules", "validate", str(folder)])
        tested = None
        if result.exit_code == 0:  # a valid pack goes through the engine too
            tested = CliRunner().invoke(main, ["rules", "test", str(folder)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{text!r}"
    )
    if tested is not None:
        assert tested.exit_code in (0, 1) and "Traceback" not in tested.output, tested.output
        assert "engine and explanation disagree" not in tested.output, (tested.output, text)
        assert tested.exception is None or isinstance(tested.exception, SystemExit), text
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 1:  # every problem is FILE[:LINE]: message
        problems = [line for line in result.output.splitlines() if "problem(s) in" not in line]
        assert problems and all(line.startswith(str(folder)) for line in problems), result.output


NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e999, -1e999, 2**63, -(2**63) - 1, 10**400, 5e-324, 0.0, -0.0]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), NUMBERS, st.text(max_size=30), st.sampled_from(["on", "yes", "~"])
)


def nested(leaves):
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(
                st.text(max_size=8) | st.sampled_from(list(GROUPS)), children, max_size=4
            ),
        ),
        max_leaves=20,
    )


def number_text(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "9" * 5000


FIELDS = sorted(fields_for("exposure")) + ["unknown_field", "any", "all", "not", ""]
VALUES = st.one_of(
    NUMBERS.map(number_text),
    st.sampled_from(['"officer"', "'cid'", "true", "false", "officer", "[1, 2]", "[]", '"', "[1,"]),
    st.text(max_size=12),
)
CONDITIONS = st.builds(
    lambda field, op, value: f"{field} {op} {value}",
    st.sampled_from(FIELDS),
    st.sampled_from([*OPERATORS, "=>", "=", "", "- "]),
    VALUES,
)


def when_trees():
    return st.recursive(
        CONDITIONS | SCALARS,
        lambda children: st.one_of(
            st.builds(
                lambda k, v: {k: v}, st.sampled_from(list(GROUPS)), st.lists(children, max_size=3)
            ),
            st.builds(lambda k, v: {k: v}, st.sampled_from(list(GROUPS)), children),
            st.lists(children, max_size=3),
        ),
        max_leaves=12,
    )


RULES = st.fixed_dictionaries(
    {
        "id": st.one_of(
            st.sampled_from(["fuzz-rule", "cluster-30d", "Bad Id"]), st.text(max_size=70)
        ),
        "title": st.text(max_size=20) | SCALARS,
        "severity": st.sampled_from(["low", "medium", "high", "urgent"]) | SCALARS,
        "when": when_trees(),
        "notify": st.lists(
            st.sampled_from(["supervisor", "wellbeing", "self", "nobody"]), max_size=3
        )
        | SCALARS,
    },
    optional={
        "on": st.sampled_from(["snapshot", "exposure", "daily"]) | SCALARS,
        "cooldown": st.sampled_from(["30d", "99999999999d", "0d", "4w", "fortnight"]) | SCALARS,
        "follow_up": st.lists(st.sampled_from(["72h", "28d", "9" * 50 + "m", "x"]), max_size=3),
        "max_age": st.sampled_from(["7d", "1d", "-1d"]) | SCALARS,
        "tests": st.lists(
            st.fixed_dictionaries(
                {
                    "given": st.dictionaries(
                        st.sampled_from(FIELDS), SCALARS | nested(SCALARS), max_size=4
                    ),
                    "expect": st.sampled_from(["fire", "no_fire", "yes"]),
                }
            )
            | nested(SCALARS),
            max_size=3,
        ),
        "extra_key": SCALARS,
    },
)


def dump(document) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@`,?\n\t 01.e~")), max_size=200))
def test_text_that_is_barely_yaml(text):
    validate("interventions/fuzz.yaml", text)


@FUZZ
@given(st.binary(max_size=200))
def test_bytes_that_are_not_text(data):
    validate("interventions/fuzz.yaml", data)


@FUZZ
@given(nested(SCALARS))
def test_yaml_documents_of_any_shape(document):
    validate("interventions/fuzz.yaml", dump(document))


@FUZZ
@given(RULES)
def test_rules_that_are_nearly_right(rule):
    validate("interventions/fuzz.yaml", dump(rule))


@FUZZ
@given(
    st.fixed_dictionaries(
        {"recipients": nested(SCALARS) | st.just({"wellbeing": {"channels": ["email"]}})},
        optional={
            "quiet_hours": nested(SCALARS) | st.just({"from": "25:00", "to": "07:00"}),
            "digest": SCALARS,
            "escalate": nested(SCALARS) | st.just({"after": "72h", "to": "nobody"}),
        },
    )
)
def test_routing_files_of_any_shape(routing):
    validate("routing.yaml", dump(routing))


def test_hostile_documents_are_refused_not_crashed():
    deep = "when: " + "[" * 5000 + "]" * 5000 + "\n"
    laughs = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    for text in (deep, "\n".join(laughs), "a: &a [*a]\n", "x: !!python/object:os.system ls\n"):
        validate("interventions/fuzz.yaml", text)


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "tiers": st.dictionaries(NUMBERS | st.text(max_size=3), NUMBERS | SCALARS, max_size=4)
            | nested(SCALARS),
            "roles": st.dictionaries(
                st.sampled_from(["oic", "attending", "first_on_scene", "boss"]),
                NUMBERS | SCALARS,
                max_size=4,
            )
            | nested(SCALARS),
            "categories": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.text(max_size=10) | SCALARS,
                        "label": st.text(max_size=10) | SCALARS,
                        "tier": NUMBERS | SCALARS,
                        "match": st.lists(
                            st.dictionaries(
                                st.sampled_from(
                                    ["feed", "closing_code", "qualifier", "hocr_code", "x"]
                                ),
                                SCALARS | st.lists(SCALARS, max_size=3),
                                max_size=3,
                            ),
                            max_size=2,
                        )
                        | SCALARS,
                    }
                ),
                max_size=3,
            )
            | nested(SCALARS),
        }
    )
)
def test_criteria_files_of_any_shape(criteria):
    validate("criteria.yaml", dump(criteria))


NUMBER_FIELDS = sorted(name for name, kind in fields_for("snapshot").items() if kind == "number")
COMPARISONS = st.builds(
    lambda field, op, value: f"{field} {op} {value}",
    st.sampled_from(NUMBER_FIELDS[:6]),
    st.sampled_from([">=", ">", "<=", "<", "==", "!="]),
    NUMBERS.map(number_text),
)
GROUPED = st.recursive(
    COMPARISONS,
    lambda children: st.builds(
        lambda kind, items: {kind: items},
        st.sampled_from(list(GROUPS)),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


@FUZZ
@given(
    GROUPED,
    st.lists(st.dictionaries(st.sampled_from(NUMBER_FIELDS[:6]), NUMBERS, max_size=3), max_size=3),
)
def test_rules_with_extreme_numbers_reach_the_engine_safely(when, givens):
    rule = {
        "id": "fuzz-rule",
        "title": "Fuzz",
        "severity": "low",
        "when": when,
        "notify": ["wellbeing"],
        "tests": [{"given": given, "expect": "fire"} for given in givens],
    }
    validate("interventions/fuzz.yaml", dump(rule))
