"""The durable_rules adapter: compile a pack once, assert facts in small batches, collect firings.

Facts, not events: an event is consumed by the first rule that matches it, so a person who
meets three rules would get one action; a fact stays until it is retracted, and every rule
that matches it fires.

Why the C module and not `durable.lang`: `durable.engine.Host` starts timer threads that
dispatch into a C core that has no locks, and catches exceptions from actions into the state
where nobody sees them. Here one lock serialises every call into the core, nothing runs in
the background, and matches are read straight from the action queue. Each batch is retracted
once its actions are drained, so working memory never holds more than one batch.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import durable_rules_engine as core

from engine.rules.conditions import to_durable
from engine.rules.pack import RulePack

log = logging.getLogger(__name__)

# Facts in a state are identified by a 32-bit hash of their id, and a state has a fixed-size
# index; batches of 500 with ids "0".."499" are a set known to hash without collision (a test
# asserts full batches), and stay far from the ~143k live facts where false duplicates began.
BATCH = 500
_SID = "batch"
_STATUS_OK, _STATUS_NOT_HANDLED, _STATUS_OBSERVED = 0, 1, 2

_lock = threading.Lock()
_handles: dict[str, int] = {}
_compiled = 0


# durable_rules 2.0.28's JSON reader crashes the process (SIGSEGV) on a number with an
# exponent and no fraction, such as Python's `1e-05` or `1e+16`, and reads some of them wrongly
# when it does not crash; with a fraction (`1.0e-05`) it reads them correctly. Every number the
# engine sees is written that way: a string literal is matched first, so text is never touched.
_BARE_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\d.])(-?\d+)([eE][-+]?\d+)')


def _with_fraction(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(0)
    return f"{match.group(1)}.0{match.group(2)}"


def to_json(value: Any) -> str:
    """JSON the engine reads safely: `json.dumps`, with `1e-05` written as `1.0e-05`."""
    text = json.dumps(value)
    if "e-" not in text and "e+" not in text:  # Python writes every exponent with a sign
        return text
    return _BARE_EXPONENT.sub(_with_fraction, text)


class EngineError(RuntimeError):
    """durable_rules did something this adapter does not expect; evaluation must stop."""


def definition(pack: RulePack) -> dict[str, Any]:
    """durable_rules' JSON for `pack`: one rule per intervention, matching facts of its kind.

    The `kind` test also keeps rules off the engine's own state object, which is a fact too.
    """
    return {
        rule.id: {"all": [{"m": {"$and": [{"kind": rule.on}, to_durable(rule.condition)]}}]}
        for rule in pack.rules
    }


def _handle(pack: RulePack) -> int:
    # Registered rulesets can't change: a pack is compiled once per process, under its hash.
    global _compiled
    handle = _handles.get(pack.name)
    if handle is None:
        _compiled += 1
        handle = core.create_ruleset(f"{pack.name}_{_compiled}", to_json(definition(pack)))
        _handles[pack.name] = handle
    return handle


def run(pack: RulePack, facts: Sequence[dict[str, Any]]) -> set[tuple[str, int]]:
    """(rule id, index into `facts`) for every rule each fact meets.

    Each fact needs `kind` ("snapshot" or "exposure") and its fields; missing values are left
    out of the fact (a JSON null is not "missing" to the engine).
    """
    fired: set[tuple[str, int]] = set()
    with _lock:
        handle = _handle(pack)
        try:
            for start in range(0, len(facts), BATCH):
                batch = facts[start : start + BATCH]
                payload = [{**fact, "id": str(i), "sid": _SID} for i, fact in enumerate(batch)]
                text = to_json(payload)
                fired.update(_run_batch(handle, text, start))
                # Retract rather than delete the state: 2.0.28's createStateNode leaves the
                # state's action context uninitialised, and delete_state frees it, which
                # crashes the process when no rule fired in that state.
                core.retract_facts(handle, text)
                if core.get_facts(handle, _SID) != "[]":
                    raise EngineError("durable_rules kept facts after they were retracted")
        except BaseException:
            # A state left half-drained must never answer for the next subjects.
            _handles.pop(pack.name, None)
            raise
    return fired


def _run_batch(handle: int, text: str, offset: int) -> list[tuple[str, int]]:
    status, state = core.assert_facts(handle, text)
    if status == _STATUS_OBSERVED:
        raise EngineError("durable_rules reported a fact as already seen in an empty state")
    if status not in (_STATUS_OK, _STATUS_NOT_HANDLED):
        raise EngineError(f"durable_rules returned status {status} asserting facts")
    started = core.start_action_for_state(handle, state)
    matches = []
    messages = started[1] if started else None
    while messages:
        for rule_id, match in json.loads(messages).items():
            # An `$or` whose branches both hold is two matches of the same fact: the caller's
            # set keeps one.
            matches.append((rule_id, offset + int(match["m"]["id"])))
        messages = core.complete_and_start_action(handle, state)
    return matches


def working_memory(pack: RulePack) -> list[dict[str, Any]]:
    """The facts the engine holds for `pack` between runs (always none; for tests)."""
    with _lock:
        handle = _handle(pack)
        try:
            return json.loads(core.get_facts(handle, _SID))
        except core.error:  # the state does not exist yet
            return []
