"""Spec YAML with line marks, so every finding can say ``file:line: $.json.path``.

PyYAML builds plain data and forgets where it came from. We compose each document's node
graph first, record the line of every mapping key, value and sequence item by JSON path,
and only then construct the data. Duplicate keys are refused (PyYAML silently keeps the
last one, which hides a typo'd override) and so are non-string keys (``on:``/``yes:`` are
booleans in YAML 1.1).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.specs.model import Diagnostic
from reconciler.yamlsafe import (
    MAX_DEPTH,
    SPEC_MAX_BYTES,
    GuardedLoader,
    InputError,
    NotRegularFile,
    describe,
    os_reason,
    read_regular,
)

PathElem = str | int
JsonPath = tuple[PathElem, ...]

SUFFIXES = (".yaml", ".yml")
MERGE_TAG = "tag:yaml.org,2002:merge"
#: aliases can make a small document expand enormously ("billion laughs"); specs are small
MAX_NODES = 100_000
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_path(path: Sequence[PathElem]) -> str:
    """``("tags", 1, "key")`` -> ``$.tags[1].key``; odd keys are quoted: ``$['a b']``."""
    out = "$"
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_KEY.match(p):
            out += f".{p}"
        else:
            out += "['" + p.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


@dataclass(frozen=True)
class Marks:
    """1-based lines of a document's parts, by JSON path."""

    start: int
    keys: Mapping[JsonPath, int] = field(default_factory=lambda: MappingProxyType({}))
    values: Mapping[JsonPath, int] = field(default_factory=lambda: MappingProxyType({}))

    def line(self, path: Sequence[PathElem]) -> int:
        """Line of the key (or item) at ``path``, else of its nearest recorded ancestor."""
        p = tuple(path)
        while p:
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return self.start

    def value_line(self, path: Sequence[PathElem]) -> int:
        p = tuple(path)
        return self.values.get(p, self.line(p))


@dataclass(frozen=True)
class Document:
    """One YAML document of a spec file, its data and where each part of it is."""

    file: Path
    index: int  # position in the file, 0-based, empty documents included
    data: Any
    marks: Marks

    def line(self, path: Sequence[PathElem]) -> int:
        return self.marks.line(path)

    def diagnostic(self, path: Sequence[PathElem], message: str, severity: str = "error") -> Diagnostic:
        return Diagnostic(self.file, self.line(path), json_path(path), message, severity)


class MarkedLoader(GuardedLoader):
    """A SafeLoader that yields each document with the line of every key, value and item."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def documents(self, file: Path, nodes: list[Node | None] | None = None) -> Iterator[Document | Diagnostic]:
        """Documents in order; a broken one gives a Diagnostic instead. Empty ones are skipped.
        ``nodes``: the documents already composed (by libyaml, see :func:`_compose_fast`)."""
        index = 0
        try:
            for node in nodes if nodes is not None else self._composed():
                index += 1
                if node is None:
                    continue
                yield from self._document(file, index - 1, node)
        except yaml.YAMLError as e:
            yield _yaml_diagnostic(file, e, self.text)

    def _composed(self) -> Iterator[Node | None]:
        while self.check_node():
            yield self.get_node()

    def _document(self, file: Path, index: int, node: Node) -> Iterator[Document | Diagnostic]:
        w = _Walk(file)
        start = node.start_mark.line + 1
        try:
            self._walk(node, (), w)
            data = self.construct_document(node)
        except yaml.YAMLError as e:
            self._reset()
            yield _yaml_diagnostic(file, e, self.text)
            return
        except Exception:  # PyYAML's constructors raise plain errors on odd input
            # dates and tagged scalars are built with Python's own constructors, which raise
            # ValueError, IndexError, AttributeError... ("2001-13-45", "!!int ''", "!!timestamp x"):
            # find the scalar and say where it is
            self._reset()
            yield Diagnostic(file, self._unconstructable(node), "$",
                             "invalid YAML: a value cannot be read as its YAML type (an impossible date such as "
                             "2001-13-45, or a !!int/!!float/!!timestamp tag on text that is not one); quote it")
            return
        if w.problems:
            yield from w.problems
            return
        if data is None:
            return
        yield Document(file, index, data, Marks(start, MappingProxyType(w.keys), MappingProxyType(w.values)))

    def _reset(self) -> None:
        self.constructed_objects, self.recursive_objects, self.state_generators = {}, {}, []
        self.deep_construct = False

    def _unconstructable(self, root: Node) -> int:
        """Line of the first scalar that does not construct (the document's start if none)."""
        stack, seen = [root], 0
        while stack and seen < MAX_NODES:
            node = stack.pop()
            seen += 1
            if isinstance(node, ScalarNode):
                try:
                    self.construct_object(node)
                except Exception:  # as above
                    self._reset()
                    return int(node.start_mark.line) + 1
                finally:
                    self._reset()
            elif isinstance(node, MappingNode):
                stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
            elif isinstance(node, SequenceNode):
                stack.extend(reversed(node.value))
        return int(root.start_mark.line) + 1

    def _walk(self, node: Node, path: JsonPath, w: _Walk) -> None:
        w.count[0] += 1
        if w.count[0] > MAX_NODES:
            if w.count[0] == MAX_NODES + 1:
                w.problems.append(Diagnostic(w.file, node.start_mark.line + 1, json_path(path),
                                             "document too large (too many nodes or aliases)"))
            return
        if id(node) in w.stack:  # a recursive alias: construct() handles it, we need not descend
            return
        w.stack.add(id(node))
        try:
            if isinstance(node, MappingNode):
                self._walk_mapping(node, path, w)
            elif isinstance(node, SequenceNode):
                for i, item in enumerate(node.value):
                    w.keys[(*path, i)] = w.values[(*path, i)] = item.start_mark.line + 1
                    self._walk(item, (*path, i), w)
        finally:
            w.stack.discard(id(node))

    def _walk_mapping(self, node: MappingNode, path: JsonPath, w: _Walk) -> None:
        seen: dict[str, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:
                merged.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            key = self.construct_object(key_node, deep=True) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                shown = f" {key_node.value!r}" if isinstance(key_node, ScalarNode) else ""
                w.problems.append(Diagnostic(w.file, line, json_path(path),
                                             f"mapping key{shown} is not a string (quote it)"))
                continue
            if key in seen:
                w.problems.append(Diagnostic(w.file, line, json_path((*path, key)),
                                             f"duplicate key '{key}' (first at line {seen[key]})"))
                continue
            seen[key] = line
            w.keys[(*path, key)] = line
            w.values[(*path, key)] = value_node.start_mark.line + 1
            self._walk(value_node, (*path, key), w)
        for source in merged:  # '<<: *base' entries; explicit keys win, as in construction
            if isinstance(source, MappingNode):
                sub = dataclasses.replace(w, keys={}, values={})
                self._walk_mapping(source, path, sub)
                for p, n in sub.keys.items():
                    w.keys.setdefault(p, n)
                for p, n in sub.values.items():
                    w.values.setdefault(p, n)


@dataclass
class _Walk:
    """What one document's walk accumulates: line marks, problems, and loop/size guards."""

    file: Path
    keys: dict[JsonPath, int] = field(default_factory=dict)
    values: dict[JsonPath, int] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    stack: set[int] = field(default_factory=set)
    count: list[int] = field(default_factory=lambda: [0])  # shared with merge sub-walks


def _yaml_diagnostic(file: Path, e: yaml.YAMLError, text: str) -> Diagnostic:
    """Position and kind of problem, never PyYAML's snippet or token (either may be a secret)."""
    line, column, problem = describe(e, text)
    return Diagnostic(file, line, "$", f"invalid YAML: {problem} (column {column})")


def _nesting_bound(text: str) -> int:
    """An upper bound of how deep ``text`` can nest: every flow level opens a bracket, and a
    block level on a line sits behind indentation or a '- '/'? ' of that line's lead."""
    lead = max((len(line) - len(line.lstrip(" -?:")) for line in text.splitlines()), default=0)
    return text.count("[") + text.count("{") + lead


def _compose_fast(text: str) -> list[Node | None] | None:
    """Every document composed by libyaml (ten times PyYAML's pure-Python speed), or None to
    take the pure-Python path: no libyaml, input that could nest deeper than the guard allows
    (libyaml has no depth limit of its own), or any error (the Python path says where and
    what). Nodes carry the same line marks either way."""
    if not yaml.__with_libyaml__ or _nesting_bound(text) >= MAX_DEPTH:
        return None
    loader = yaml.CSafeLoader(text)
    try:
        nodes: list[Node | None] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def load_text(text: str, file: Path) -> tuple[list[Document], list[Diagnostic]]:
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    try:
        loader = MarkedLoader(text)  # checks every character up front: a control byte fails here
    except yaml.YAMLError as e:
        return [], [_yaml_diagnostic(file, e, text)]
    try:
        for item in loader.documents(file, _compose_fast(text)):
            (docs if isinstance(item, Document) else diags).append(item)  # type: ignore[arg-type]
    finally:
        loader.dispose()
    return docs, diags


def load_file(file: Path) -> tuple[list[Document], list[Diagnostic]]:
    """Documents of one file; an unreadable, oversized or non-UTF-8 file is one diagnostic, and a
    FIFO, device or directory named like a spec is skipped with a warning (reading it could hang)."""
    try:
        raw = read_regular(file, SPEC_MAX_BYTES)
    except NotRegularFile as e:
        return [], [Diagnostic(file, 0, "$", f"skipped: {e}", "warning")]
    except InputError as e:
        return [], [Diagnostic(file, 0, "$", f"spec file {e}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return [], [Diagnostic(file, line, "$", "spec file is not UTF-8 text")]
    return load_text(text, file)


def spec_files(directory: Path, problems: list[Diagnostic] | None = None) -> list[Path]:
    """``*.yaml``/``*.yml`` below ``directory``, sorted; hidden files and directories skipped.
    A directory that cannot be listed is a problem (appended to ``problems``), never a silent
    gap: the syncs in it would silently stop being reconciled."""
    found: list[Path] = []

    def unreadable(e: OSError) -> None:
        if problems is not None:
            where = Path(e.filename) if e.filename else directory
            problems.append(Diagnostic(where, 0, "$", f"cannot read spec directory: {os_reason(e)}"))

    for root, dirs, files in os.walk(directory, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.endswith(SUFFIXES):
                found.append(Path(root) / name)
            elif not name.startswith(".") and name.lower().endswith(SUFFIXES) and problems is not None:
                problems.append(Diagnostic(Path(root) / name, 0, "$", "skipped: only files ending in .yaml or "
                                           ".yml (lower case) are specs; rename it to have it read",
                                           severity="warning"))
    return sorted(found)


def load_dir(directory: Path) -> tuple[list[Document], list[Diagnostic]]:
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        return [], [Diagnostic(directory, 0, "$", f"spec directory {what}")]
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    for file in spec_files(directory, diags):
        d, g = load_file(file)
        docs.extend(d)
        diags.extend(g)
    return docs, diags
