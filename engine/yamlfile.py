"""Reading the steering group's YAML files so that every problem can name its line.

PyYAML's constructed data forgets where things were; the composed node tree remembers. We
build the data and, walking the same tree, a map from each value's path (keys and list
indexes, as text) to its 1-based line. Validators then turn an error's path into FILE:LINE.

Files are read as YAML 1.2 data: PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no`
are booleans, so the contract's `on: exposure` would load as `{True: "exposure"}`. Only
`true` and `false` are booleans here.

A rule file is small and written by people, so anything far beyond that is refused with its
line before it can cost time or memory: more than MAX_BYTES, nesting deeper than MAX_DEPTH,
more than MAX_ALIASES aliases, or aliases that expand to more than MAX_EXPANSION values (a
"billion laughs" document is a few hundred bytes that expand to 10^9 values).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str, ...]
_BOOL_TAG = "tag:yaml.org,2002:bool"

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 40
MAX_ALIASES = 100
MAX_EXPANSION = 10_000  # values reached through aliases, beyond the values written out


class _TooComplex(yaml.MarkedYAMLError):
    """A document beyond the bounds above, or a value that can't be built; `problem` says
    which, `problem_mark` where."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2 booleans and bounded nesting and aliases."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0
        self.aliases = 0
        self.nodes = 0

    def compose_node(self, parent, index):
        # The composer recurses once per level: stop before Python's recursion limit does.
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooComplex(
                    problem=f"more than {MAX_ALIASES} aliases (*name); write the values out",
                    problem_mark=event.start_mark,
                )
        self.depth += 1
        self.nodes += 1
        if self.depth > MAX_DEPTH:
            raise _TooComplex(
                problem=f"nested more than {MAX_DEPTH} levels deep",
                problem_mark=event.start_mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        # PyYAML lets Python's own errors out for values it resolved but can't build: a date
        # like 2025-02-30, an integer of thousands of digits.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as error:
            shown = str(node.value)
            shown = shown if len(shown) <= 40 else f"{shown[:30]}... ({len(shown)} characters)"
            reason = str(error).split(";")[0].split(":")[0]
            raise _TooComplex(
                problem=f"can't read {shown!r}: {reason}", problem_mark=node.start_mark
            ) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule file, as `FILE:LINE: message`."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        # One line whatever the file holds: a key or value may carry a newline or a control
        # character, shown escaped.
        where = f"{self.file}:{self.line}" if self.line else self.file
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.message)
        return f"{where}: {message}"


class RuleFileError(Exception):
    """A rule file that can't be used; `problems` lists each one with its line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class LinedDocument:
    """A YAML document's data and the line of every key and list item in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[Any]) -> int | None:
        """The line of `path`, or of its nearest enclosing value that has one."""
        key = tuple(str(p) for p in path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def problem(self, path: Sequence[Any], message: str) -> Problem:
        return Problem(self.file, self.line_of(path), message)


def load(path: Path, *, label: str | None = None) -> LinedDocument:
    """Parse one YAML file. Duplicate keys are errors (YAML would silently keep the last).

    :raise RuleFileError: the file can't be read or isn't YAML.
    """
    name = label or str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise RuleFileError([Problem(name, None, f"can't read: {error.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        message = f"larger than {MAX_BYTES // 1024} KiB: a rule file is not that big"
        raise RuleFileError([Problem(name, None, message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleFileError([Problem(name, None, "not UTF-8 text")]) from None
    return parse(text, name)


def parse(text: str, name: str) -> LinedDocument:
    """As `load`, for text already read; `name` is what messages call the file."""
    if len(text) > MAX_BYTES:
        message = f"larger than {MAX_BYTES // 1024} KiB: a rule file is not that big"
        raise RuleFileError([Problem(name, None, message)])
    try:
        loader = _Loader(text)  # reads the text at once: a NUL or the like is refused here
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        character = chr(error.character) if isinstance(error.character, int) else "?"
        message = f"not valid YAML: the character {character!r} is not allowed in a YAML file"
        raise RuleFileError([Problem(name, line, message)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return LinedDocument(name, None, {(): 1})
        data = loader.construct_document(node)
    except _TooComplex as error:
        raise RuleFileError([_bound_problem(name, error)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        message = f"not valid YAML: {error.problem}"
        if error.context and error.context_mark and error.context_mark is not mark:
            message += f" ({error.context} at line {error.context_mark.line + 1})"
        raise RuleFileError([Problem(name, line, message)]) from None
    except yaml.YAMLError as error:
        raise RuleFileError([Problem(name, None, f"not valid YAML: {error}")]) from None
    finally:
        loader.dispose()
    document = LinedDocument(name, data, {(): node.start_mark.line + 1})
    lines = _Lines(document, budget=loader.nodes + MAX_EXPANSION)
    try:
        lines.visit(node, ())
    except _TooComplex as error:
        raise RuleFileError([_bound_problem(name, error)]) from None
    if lines.problems:
        raise RuleFileError(lines.problems)
    return document


def _bound_problem(name: str, error: _TooComplex) -> Problem:
    line = error.problem_mark.line + 1 if error.problem_mark else None
    return Problem(name, line, str(error.problem))


class _Lines:
    """Records the line of every key and list item, and duplicate keys as problems.

    What an alias reaches is visited at each place it is used, so the walk has a budget of
    values and of depth: an alias may repeat a node very many times, or contain itself.
    """

    def __init__(self, document: LinedDocument, budget: int):
        self.document = document
        self.problems: list[Problem] = []
        self.budget = budget

    def visit(self, node: yaml.Node, path: Path_) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _TooComplex(
                problem=f"aliases (*name) expand to more than {MAX_EXPANSION} values",
                problem_mark=node.start_mark,
            )
        if len(path) >= MAX_DEPTH:
            raise _TooComplex(
                problem=f"nested more than {MAX_DEPTH} levels deep (through aliases)",
                problem_mark=node.start_mark,
            )
        lines = self.document.lines
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    message = f"duplicate key {key!r} (first at line {seen[key]})"
                    self.problems.append(Problem(self.document.file, line, message))
                seen.setdefault(key, line)
                lines.setdefault((*path, key), line)
                self.visit(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault((*path, str(index)), item.start_mark.line + 1)
                self.visit(item, (*path, str(index)))
