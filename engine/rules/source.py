"""Reading intervention and routing files as YAML 1.2 data with the line of every value.

PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no` are booleans: the contract's
`on: exposure` would load as `{True: "exposure"}`. The steering group's files are read with
only `true` and `false` as booleans. Problems are `engine.yamlfile.Problem`s, the type the
criteria loader uses, so the CLI and the web banner show every rule file the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from engine.yamlfile import LinedDocument, Problem, RuleFileError

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


def load(path: Path, label: str | None = None) -> LinedDocument:
    """One YAML file with its lines; duplicate keys are errors, as YAML would keep the last.

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


def _walk(node: yaml.Node, path: tuple[str, ...], document: LinedDocument, problems: list):
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
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
