"""Where a problem of a rules file is: YAML nodes keep their line, so a path
such as ("rules", 3, "then", "department") can be shown as `FILE:LINE`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

Loc = tuple[str | int, ...]

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


class _Loader(_Base):  # type: ignore[valid-type, misc]
    """Safe YAML, except that 22:00 stays the string "22:00": YAML 1.1 would read
    it as the base-60 number 1320, and times of day are what rules files hold."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [("tag:yaml.org,2002:str", _SEXAGESIMAL), *resolvers]
        if first in "+-0123456789"
        else list(resolvers)
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    # Schema errors name the field under the rule; a check's message says it all.
    show_path: bool = False
    line: int | None = None  # known directly, e.g. for a YAML syntax error


@dataclass(frozen=True)
class Document:
    data: Any
    root: yaml.Node | None


def read_document(text: str) -> Document:
    """The data and its node tree, parsed once. Raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return Document(data, root)


def parse(text: str) -> tuple[Document, list[Problem]]:
    """The document and the problems YAML itself finds: a syntax error (then
    no data) or keys given twice."""
    try:
        document = read_document(text)
    except yaml.YAMLError as exc:
        return Document(None, None), [syntax_problem(exc, text)]
    return document, duplicate_keys(document.root)


def read_file(path: Path, what: str) -> tuple[str | None, list[str]]:
    """A UTF-8 file's text, or None and why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8"), []
    except OSError as exc:
        return None, [f"{path}: cannot read the {what}: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 text: {exc}"]


def syntax_problem(exc: yaml.YAMLError, text: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    reason = getattr(exc, "problem", None) or str(exc)
    line = mark.line + 1 if mark is not None else 1
    # The parser marks an unexpected end of file past the last line.
    last = text.count("\n") + (0 if text.endswith("\n") else 1)
    return Problem((), f"not valid YAML: {reason}", line=max(1, min(line, last)))


def duplicate_keys(root: yaml.Node | None) -> list[Problem]:
    """Keys given twice in one mapping: YAML keeps the last silently, so a
    second `when:` would quietly replace the first."""
    problems = []
    for node in _mappings(root):
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                message = f"duplicate key {key.value!r} (the last one would win)"
                problems.append(Problem((), message, line=key.start_mark.line + 1))
            seen.add(str(key.value))
    return problems


def _mappings(node: yaml.Node | None) -> Iterator[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        yield node
        for _, value in node.value:
            yield from _mappings(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _mappings(item)


def locate(root: yaml.Node | None, loc: Loc) -> tuple[int, Loc]:
    """The line (1-based) of the deepest node of loc found in the file, and the
    part of loc that was found. Steps that are not in the file are skipped:
    pydantic's union tags, or the name of a missing field (its parent's line)."""
    if root is None:
        return 1, ()
    node, line, found = root, root.start_mark.line + 1, []
    for part in loc:
        step = _child(node, part)
        if step is None:
            continue
        mark_node, node = step
        line = mark_node.start_mark.line + 1
        found.append(part)
    return line, tuple(found)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item, item
    return None


def format_problems(source: str, document: Document, problems: Iterable[Problem]) -> list[str]:
    """`FILE:LINE: rules[3] (id): message` lines, in the order of the file."""
    located = []
    for problem in problems:
        line, found = locate(document.root, problem.loc)
        line = problem.line or line
        located.append((line, f"{source}:{line}: {_subject(document.data, problem, found)}"))
    located.sort(key=lambda item: item[0])
    return [text for _, text in located]


def _subject(data: Any, problem: Problem, found: Loc) -> str:
    prefix, rest = "", found
    loc = problem.loc
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        prefix = f"rules[{loc[1]}]{_rule_id(data, loc[1])}: "
        rest = found[2:]
    path = _path(rest) if problem.show_path else ""
    return prefix + (f"{path}: " if path else "") + problem.message


def _rule_id(data: Any, index: int) -> str:
    rules = data.get("rules") if isinstance(data, dict) else None
    raw = rules[index] if isinstance(rules, list) and index < len(rules) else None
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    return f" ({rule_id})" if isinstance(rule_id, str) else ""


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
