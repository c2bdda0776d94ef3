"""`rules test`: each rule file's `tests`, run through the engine as the live rules are.

A failure names the rule, the case (FILE:LINE) and the conditions that went the other way:
for a case expected to fire, the conditions that were false; for one expected not to fire,
those that were true.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.rules.conditions import describe, explain, leaves
from engine.rules.fields import AGE_FIELD, typed
from engine.rules.matching import Subject, match
from engine.rules.pack import Rule, RulePack, RuleTest


@dataclass(frozen=True)
class TestFailure:
    rule: Rule
    case: RuleTest
    fired: bool
    against: tuple[str, ...]  # the conditions that went the other way, described

    def __str__(self) -> str:
        expected = "fire" if self.case.expect == "fire" else "not fire"
        got = "it fired" if self.fired else "it did not"
        where = f"{self.rule.file}:{self.case.line}" if self.case.line else self.rule.file
        lines = [f"{where}: rule {self.rule.id}, {self.case.name}: expected to {expected}, {got}"]
        lines += [f"    {condition}" for condition in self.against]
        return "\n".join(lines)


@dataclass
class TestReport:
    passed: int = 0
    failures: list[TestFailure] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.disagreements


def run_tests(pack: RulePack) -> TestReport:
    """Run every case of every rule in `pack`; a case's missing fields are missing values."""
    cases: list[tuple[Rule, RuleTest]] = []
    subjects: list[Subject] = []
    for rule in pack.rules:
        kinds = rule.fields
        for case in rule.tests:
            values = {k: typed(v, kinds[k]) for k, v in case.given.items() if k in kinds}
            values = {k: v for k, v in values.items() if v is not None}
            if rule.on == "exposure":
                values.setdefault(AGE_FIELD, 0)  # a case is an exposure scored just now
            subjects.append(Subject(rule.on, f"test:{rule.id}:{case.name}", values, case.given))
            cases.append((rule, case))
    result = match(pack, subjects)
    fired = {(f.rule.id, id(f.subject)) for f in result.firings}
    report = TestReport(disagreements=result.disagreements)
    for (rule, case), subject in zip(cases, subjects, strict=True):
        did_fire = (rule.id, id(subject)) in fired
        if did_fire == (case.expect == "fire"):
            report.passed += 1
            continue
        explanation = explain(rule.condition, subject.values)
        against = tuple(
            describe(leaf) for leaf in leaves(explanation) if leaf["result"] is did_fire
        )
        report.failures.append(TestFailure(rule, case, did_fire, against))
    return report
