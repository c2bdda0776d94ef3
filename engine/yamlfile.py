"""Reading the steering group's YAML files so that every problem can name its line.

PyYAML's constructed data forgets where things were; the composed node tree remembers. We
build the data and, walking the same tree, a map from each value's path (keys and list
indexes, as text) to its 1-based line. Validators then turn an error's path into FILE:LINE.

Files are read as YAML 1.2 data: PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no`
are booleans, so the contract's `on: exposure` would load as `{True: "exposure"}`. Only
`true` and `false` are booleans here.
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


class _Loader(yaml.SafeLoader):
    pass


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
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


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
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RuleFileError([Problem(name, None, f"can't read: {error.strerror}")]) from None
    except UnicodeDecodeError:
        raise RuleFileError([Problem(name, None, "not UTF-8 text")]) from None
    return parse(text, name)


def parse(text: str, name: str) -> LinedDocument:
    """As `load`, for text already read; `name` is what messages call the file."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LinedDocument(name, None, {(): 1})
        data = loader.construct_document(node)
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
    problems: list[Problem] = []
    _walk(node, (), document, problems)
    if problems:
        raise RuleFileError(problems)
    return document


def _walk(node: yaml.Node, path: Path_, document: LinedDocument, problems: list[Problem]):
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                problems.append(
                    Problem(
                        document.file, line, f"duplicate key {key!r} (first at line {seen[key]})"
                    )
                )
            seen.setdefault(key, line)
            document.lines.setdefault((*path, key), line)
            _walk(value_node, (*path, key), document, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            document.lines.setdefault((*path, str(index)), item.start_mark.line + 1)
            _walk(item, (*path, str(index)), document, problems)
