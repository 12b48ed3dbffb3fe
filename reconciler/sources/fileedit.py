"""Textual edits of a secrets file: an import changes the bytes of the keys it writes, and no
other byte.

Why not load + dump: a dump drops every comment and rewrites every unquoted value as YAML
reads it (``05432`` -> ``2842``, ``yes`` -> ``true``, ``1.10`` -> ``1.1``), and the next plan
pushes those changed values to the destination. A round-trip library still re-indents and
re-spaces. Here PyYAML's node marks say where each value is; a value is replaced in place and
a new key is inserted after the last entry of its folder, in the folder's own style (block or
flow) and indentation. Every value written is double-quoted, so it reads back exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Entries = Mapping[str, "str | Entries"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9_./-]*$")
_STR_TAG = "tag:yaml.org,2002:str"
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}


def quote(value: str) -> str:
    """A double-quoted YAML scalar that reads back as exactly ``value`` (spaces, line breaks,
    control and non-printable characters included: they are escaped, never folded)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code <= 0xA0 or code in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        elif code in (0xFFFE, 0xFFFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key_text(key: str) -> str:
    """A mapping key as written: plain when YAML reads it back as that same string."""
    plain = (_PLAIN_KEY.match(key) or _PLAIN_PATH.match(key)) is not None
    if plain and yaml.SafeLoader.resolve(yaml.SafeLoader, ScalarNode, key, (True, False)) == _STR_TAG:  # type: ignore[arg-type, no-untyped-call]
        return key
    return quote(key)


def _block(entries: Entries, indent: int, step: int) -> str:
    out = []
    for key, value in entries.items():
        if isinstance(value, str):
            out.append(f"{' ' * indent}{key}: {value}\n")
        else:
            out.append(f"{' ' * indent}{key}:\n{_block(value, indent + step, step)}")
    return "".join(out)


def _flow(entries: Entries) -> str:
    return "{" + ", ".join(f"{k}: {v if isinstance(v, str) else _flow(v)}" for k, v in entries.items()) + "}"


class TextEdit:
    """Edits against the original text, by character offsets; applied together at the end."""

    def __init__(self, text: str, step: int = 2) -> None:
        self.text = text
        self.step = step
        self._newline = "\r\n" if "\r\n" in text else "\n"  # a CRLF file stays CRLF
        self._edits: list[tuple[int, int, str]] = []

    def result(self) -> str:
        text = self.text
        for start, end, new in sorted(self._edits, key=lambda e: (e[0], e[1]), reverse=True):
            text = text[:start] + new + text[end:]
        return text

    def _content_end(self, node: Node) -> int:
        """Where a scalar's own text ends (a block scalar's mark also covers its trailing blank lines)."""
        end = node.end_mark.index
        if isinstance(node, ScalarNode) and node.style in ("|", ">"):
            end = node.start_mark.index + len(self.text[node.start_mark.index:end].rstrip(" \t\r\n"))
        return end

    def _line_after(self, index: int) -> int:
        """Start of the line after the one holding ``index`` (end of text if none)."""
        nl = self.text.find("\n", index)
        return len(self.text) if nl == -1 else nl + 1

    def _insert_lines(self, at: int, lines: str) -> None:
        if at == len(self.text) and self.text and not self.text.endswith("\n"):
            lines = "\n" + lines
        self._edits.append((at, at, lines.replace("\n", self._newline)))

    def replace(self, node: Node, new: str) -> None:
        """Put ``new`` (already quoted) where the scalar ``node`` is written."""
        self._edits.append((node.start_mark.index, self._content_end(node), new))

    def _after_last(self, mapping: MappingNode) -> int:
        key, node = mapping.value[-1]
        while True:
            if isinstance(node, MappingNode) and not node.flow_style and node.value:
                key, node = node.value[-1]
            elif isinstance(node, SequenceNode) and not node.flow_style and node.value:
                node = node.value[-1]
            else:
                break
        if isinstance(node, ScalarNode) and node.value == "" and node.start_mark.index == node.end_mark.index:
            node = key  # an empty value: its mark is just past the colon
        return self._line_after(self._content_end(node))

    def add_to_mapping(self, mapping: MappingNode, entries: Entries, owner: Node | None = None) -> None:
        """Insert ``entries`` after the mapping's last entry, in its style and (nested entries)
        with the indentation step it has under its ``owner`` key."""
        if mapping.flow_style or not mapping.value:
            close = mapping.end_mark.index - 1  # the '}'
            before = self.text[:close].rstrip()
            comma = "" if before.endswith("{") else " " if before.endswith(",") else ", "
            at = len(before)
            self._edits.append((at, at, comma + _flow(entries)[1:-1]))
            return
        indent = mapping.value[0][0].start_mark.column
        step = indent - owner.start_mark.column if owner is not None else 0
        self._insert_lines(self._after_last(mapping), _block(entries, indent, step if step > 0 else self.step))

    def fill_empty(self, key: Node, value: ScalarNode, entries: Entries, *, flow_parent: bool) -> None:
        """Give a key whose value is null (``/app:`` or ``/app: ~``) these entries as its mapping."""
        if value.start_mark.index != value.end_mark.index:  # an explicit ~ or null
            self._edits.append((value.start_mark.index, value.end_mark.index, _flow(entries)))
        elif flow_parent:
            self._edits.append((value.start_mark.index, value.start_mark.index, " " + _flow(entries)))
        else:
            indent = key.start_mark.column + self.step
            self._insert_lines(self._line_after(key.end_mark.index), _block(entries, indent, self.step))

    def append_top(self, entries: Entries) -> None:
        """A file without any mapping yet (empty, or only comments)."""
        self._insert_lines(len(self.text), _block(entries, 0, self.step))
