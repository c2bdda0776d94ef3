"""Intervention rules: files compiled to durable_rules rulesets, validated, tested, explained.

`load_pack` reads and validates a rules folder; `matching.match` runs subjects through the
engine; `engine.alerts.decisions.decide` turns firings into decisions, alerts and outbox rows.
"""

from engine.rules.pack import Rule, RulePack, load_pack
from engine.yamlfile import Problem, RuleFileError

__all__ = ["Problem", "Rule", "RuleFileError", "RulePack", "load_pack"]
