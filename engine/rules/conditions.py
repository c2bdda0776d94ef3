"""Rule conditions: a tiny parser, a Python evaluator that explains, and the durable_rules form.

A condition is `FIELD OP VALUE` (OP one of >= > <= < == != in); groups are `all`, `any` and
`not`. Nothing from a rule file is ever passed to `eval`: text becomes a small tree here, and
the tree is turned into durable_rules' JSON and, separately, evaluated in Python to explain a
decision. The two must agree; tests compare them on generated snapshots.

Semantics both sides share: a missing value makes every comparison false (`!=` too), and
`not` is plain negation, so `not: [x >= 5]` is true when x is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from engine.rules.fields import BOOL, NUMBER, TEXT, number_problem, unknown_field_message

OPERATORS = (">=", ">", "<=", "<", "==", "!=", "in")
GROUPS = ("all", "any", "not")

Node = Union["Comparison", "Group"]


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any  # a number, text, a bool, or a tuple of them for `in`
    line: int | None = field(default=None, compare=False)

    def text(self) -> str:
        return f"{self.field} {self.op} {render_value(self.value)}"


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not (a `not` has one item)
    items: tuple[Node, ...]
    line: int | None = field(default=None, compare=False)


class ConditionError(ValueError):
    """A condition that can't be used; `line` is where it is, when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


# --- parsing ---------------------------------------------------------------------------------

_FIELD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_OPERATOR = re.compile(r"(>=|<=|==|!=|>|<|in(?=[\s\[]))\s*")
_NOT_AN_OPERATOR = re.compile(r"[^\sA-Za-z0-9\"'\[\-.]+|[A-Za-z]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?(?![A-Za-z0-9_])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECODER = json.JSONDecoder()


def parse(raw: Any, fields: Mapping[str, str], lines: Mapping[tuple, int], path: tuple) -> Node:
    """The tree for `raw` (a condition string or a group mapping), checked against `fields`.

    `lines` maps YAML paths to line numbers; problems are collected in the raised
    ConditionGroupError so that one pass reports every bad condition.
    """
    problems: list[ConditionError] = []
    node = _parse_node(raw, fields, lines, path, problems)
    if problems:
        raise ConditionGroupError(problems)
    assert node is not None
    return node


class ConditionGroupError(ValueError):
    def __init__(self, problems: list[ConditionError]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _line(lines: Mapping[tuple, int], path: tuple) -> int | None:
    key = tuple(str(p) for p in path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return lines.get(())


def _parse_node(raw, fields, lines, path, problems) -> Node | None:
    line = _line(lines, path)
    if isinstance(raw, str):
        try:
            return parse_comparison(raw, fields, line)
        except ConditionError as error:
            problems.append(error)
            return None
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, value),) = raw.items()
        key_line = _line(lines, (*path, kind))
        if kind not in GROUPS:
            problems.append(
                ConditionError(f"unknown group {kind!r}: use all, any or not", key_line)
            )
            return None
        if kind == "not" and not isinstance(value, list):
            value = [value]  # `not: x >= 1` reads naturally; a list under not means all of them
        if not isinstance(value, list) or not value:
            problems.append(ConditionError(f"{kind}: needs a list of conditions", key_line))
            return None
        items = [
            _parse_node(v, fields, lines, (*path, kind, i), problems) for i, v in enumerate(value)
        ]
        if any(item is None for item in items):
            return None
        if kind == "not" and len(items) > 1:
            return Group("not", (Group("all", tuple(items), key_line),), key_line)
        return Group(kind, tuple(items), key_line)
    problems.append(
        ConditionError(
            "a condition is text `FIELD OP VALUE` or a group with one key, all:, any: or not:; "
            f"got {raw!r}",
            line,
        )
    )
    return None


def parse_comparison(text: str, fields: Mapping[str, str], line: int | None = None) -> Comparison:
    """`FIELD OP VALUE` checked against `fields` (name -> type)."""
    quoted = repr(_shortened(text, 80))
    match = _FIELD.match(text)
    if not match:
        raise ConditionError(f"{quoted}: a condition starts with a field name", line)
    name, rest = match.group(1), text[match.end() :]
    op_match = _OPERATOR.match(rest)
    if not op_match and name in GROUPS and (not rest.strip() or rest.lstrip().startswith("-")):
        # `- any` without its colon: YAML reads it and the indented items as one text.
        raise ConditionError(
            f"{quoted}: `{name}` needs a colon to start a group: write `{name}:` and put its "
            "conditions under it, one `- ...` per line, indented",
            line,
        )
    if not op_match:
        bad = _NOT_AN_OPERATOR.match(rest)
        shown = bad.group(0) if bad else rest.strip() or "nothing"
        raise ConditionError(
            f"{quoted}: bad operator {shown!r} (use one of {' '.join(OPERATORS)})", line
        )
    op, rest = op_match.group(1), rest[op_match.end() :]
    try:
        value, rest = _parse_value(rest, allow_list=op == "in")
    except ValueError as error:
        raise ConditionError(f"{quoted}: {error}", line) from None
    if rest.strip():
        raise ConditionError(f"{quoted}: unexpected {rest.strip()!r} after the value", line)
    if name not in fields:
        raise ConditionError(f"{quoted}: {_unknown(name, fields)}", line)
    problem = _type_problem(name, fields[name], op, value)
    if problem:
        raise ConditionError(f"{quoted}: {problem}", line)
    return Comparison(name, op, tuple(value) if isinstance(value, list) else value, line)


def _unknown(name: str, fields: Mapping[str, str]) -> str:
    kind = "exposure" if "category" in fields else "snapshot"
    return unknown_field_message(name, kind)


def _parse_value(text: str, allow_list: bool) -> tuple[Any, str]:
    text = text.lstrip()
    if text.startswith('"'):
        try:
            value, end = _DECODER.raw_decode(text)
        except json.JSONDecodeError:
            raise ValueError("unterminated quoted text") from None
        return value, text[end:]
    if text.startswith("'"):
        end = text.find("'", 1)
        if end < 0:
            raise ValueError("unterminated quoted text")
        return text[1:end], text[end + 1 :]
    if text.startswith("["):
        if not allow_list:
            raise ValueError("a list is only for `in`")
        items: list[Any] = []
        rest = text[1:].lstrip()
        while not rest.startswith("]"):
            item, rest = _parse_value(rest, allow_list=False)
            items.append(item)
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
            elif not rest.startswith("]"):
                raise ValueError("a list is [VALUE, VALUE, ...]")
        if not items:
            raise ValueError("`in` needs a list with at least one value")
        return items, rest[1:]
    number = _NUMBER.match(text)
    if number:
        literal = number.group(0)
        if number.group(1) or number.group(2):
            value: int | float = float(literal)
        elif len(literal.lstrip("-")) > 19:  # beyond 64 bits, and int() refuses 4,300 digits
            raise ValueError(f"{_shortened(literal)} {number_problem(2**64)}")
        else:
            value = int(literal)
        problem = number_problem(value)
        if problem:
            raise ValueError(f"{_shortened(literal)} {problem}")
        return value, text[number.end() :]
    word = _WORD.match(text)
    if word and word.group(0) in ("true", "false"):
        return word.group(0) == "true", text[word.end() :]
    if word:
        raise ValueError(f'quote text values: "{word.group(0)}"')
    if not text:
        raise ValueError("missing value")
    raise ValueError(f"bad value {text!r}: use a number, quoted text, true/false or a list")


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 10]}... ({len(text)} characters)"


def _type_problem(name: str, kind: str, op: str, value: Any) -> str | None:
    if op == "in" and not isinstance(value, list):
        return '`in` needs a list, like [1, 2] or ["a", "b"]'
    values = value if isinstance(value, list) else [value]
    if kind == NUMBER:
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            return f"{name} is a number: compare it with a number"
    elif kind == BOOL:
        if op not in ("==", "!="):
            return f"{name} is true/false: use == or !="
        if not all(isinstance(v, bool) for v in values):
            return f"{name} is true/false: compare it with true or false"
    elif kind == TEXT:
        if op not in ("==", "!=", "in"):
            return f"{name} is text: use ==, != or in"
        if not all(isinstance(v, str) for v in values):
            return f'{name} is text: compare it with quoted text, like "officer"'
    return None


# --- rendering -------------------------------------------------------------------------------


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def to_data(node: Node) -> Any:
    """The YAML-shaped form of a tree: parsing it again gives an equal tree."""
    if isinstance(node, Comparison):
        return node.text()
    if node.kind == "not":
        return {"not": to_data(node.items[0])}
    return {node.kind: [to_data(item) for item in node.items]}


def fields_of(node: Node) -> Iterator[str]:
    if isinstance(node, Comparison):
        yield node.field
    else:
        for item in node.items:
            yield from fields_of(item)


# --- Python evaluation -----------------------------------------------------------------------


def _compare(op: str, actual: Any, value: Any) -> bool:
    if actual is None:
        return False
    if op == "==":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == ">=":
        return actual >= value
    if op == ">":
        return actual > value
    if op == "<=":
        return actual <= value
    return actual < value


def holds(node: Node, values: Mapping[str, Any]) -> bool:
    """Whether `values` meet `node`; the fast path for evaluating without explaining."""
    if isinstance(node, Comparison):
        return _compare(node.op, values.get(node.field), node.value)
    if node.kind == "all":
        return all(holds(item, values) for item in node.items)
    if node.kind == "any":
        return any(holds(item, values) for item in node.items)
    return not holds(node.items[0], values)


def explain(node: Node, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every condition with its threshold, the actual value and the result (no short cuts)."""
    if isinstance(node, Comparison):
        actual = values.get(node.field)
        threshold = list(node.value) if isinstance(node.value, tuple) else node.value
        return {
            "field": node.field,
            "op": node.op,
            "value": threshold,
            "actual": actual,
            "result": _compare(node.op, actual, node.value),
        }
    items = [explain(item, values) for item in node.items]
    results = [item["result"] for item in items]
    if node.kind == "all":
        result = all(results)
    elif node.kind == "any":
        result = any(results)
    else:
        result = not results[0]
    return {"group": node.kind, "result": result, "items": items}


def leaves(explanation: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if "group" in explanation:
        for item in explanation["items"]:
            yield from leaves(item)
    else:
        yield explanation


def describe(leaf: Mapping[str, Any]) -> str:
    """`trauma_points_90d >= 12 (actual 11: false)`."""
    actual = "missing" if leaf["actual"] is None else render_value(leaf["actual"])
    threshold = leaf["value"]
    condition = f"{leaf['field']} {leaf['op']} {render_value(threshold)}"
    return f"{condition} (actual {actual}: {'true' if leaf['result'] else 'false'})"


# --- durable_rules form ----------------------------------------------------------------------

_DURABLE_OP = {">=": "$gte", ">": "$gt", "<=": "$lte", "<": "$lt", "!=": "$neq"}
_OPPOSITE = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}


def _joined(operator: str, parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {operator: parts}


def _positive(name: str, op: str, value: Any) -> dict:
    if op == "==":
        return {name: value}
    if op == "in":
        return _joined("$or", [{name: v} for v in value])
    return {_DURABLE_OP[op]: {name: value}}


def to_durable(node: Node, negate: bool = False) -> dict:
    """durable_rules' expression for `node`, with `not` pushed down to the comparisons.

    durable_rules has no negation of an expression, so `not` is rewritten by De Morgan. A
    negated comparison also holds when the field is missing (`$nex`), which keeps the engine
    exactly equal to the Python evaluator's "missing is false, then negate".
    """
    if isinstance(node, Comparison):
        if not negate:
            return _positive(node.field, node.op, node.value)
        missing = {"$nex": {node.field: 1}}
        if node.op == "in":
            present = _joined("$and", [{"$neq": {node.field: v}} for v in node.value])
        else:
            present = _positive(node.field, _OPPOSITE[node.op], node.value)
        return {"$or": [missing, present]}
    if node.kind == "not":
        return to_durable(node.items[0], not negate)
    conjunction = (node.kind == "all") != negate
    parts = [to_durable(item, negate) for item in node.items]
    return _joined("$and" if conjunction else "$or", parts)
