"""Reading user-written YAML (spec files, secrets files) without trusting it.

Both readers need the same guards, so they live here once:

- a file is opened without blocking and read only if it is a regular file under a size cap
  (a FIFO named ``x.yaml`` would block forever; ``/dev/zero`` never ends);
- nesting is capped (PyYAML composes recursively: a deep document is a RecursionError);
- an error is described by its position and the kind of problem only. PyYAML quotes the
  offending token (``found undefined alias 'X'``, ``could not determine a constructor for the
  tag '!X'``), and in these files a token can be a secret.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml
from yaml.composer import ComposerError
from yaml.nodes import Node

from reconciler.oserror import os_reason as os_reason  # re-exported for the YAML readers

#: deeper than any spec or secrets file needs, far below Python's recursion limit
MAX_DEPTH = 64
SPEC_MAX_BYTES = 1 << 20
SECRETS_MAX_BYTES = 16 << 20

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class InputError(Exception):
    """A file that cannot be taken as input. The message never holds file content."""


class NotRegularFile(InputError):
    """Not a regular file (directory, FIFO, device): callers may skip it rather than fail."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(f"cannot be read: {os_reason(e)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
            raise NotRegularFile(f"is {kind}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise InputError(f"cannot be read: {os_reason(e)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(f"is larger than the limit of {limit // 1024} KiB")
    return b"".join(chunks)


class GuardedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents nested deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_KEEP = re.compile(r"'(<[a-z ]+>|[^A-Za-z0-9\s])'")
#: PyYAML problems that name a token, in our words with the remedy
_KNOWN = (
    ("could not determine a constructor for the tag", "a value starting with '!' is a YAML tag; quote it"),
    ("found undefined tag handle", "a value starting with '!' is a YAML tag; quote it"),
    ("found undefined alias", "a value starting with '*' is a YAML alias; quote it"),
    ("found duplicate anchor", "an anchor ('&') is defined twice"),
    ("found unknown escape character", "unknown escape in a double-quoted string; use single quotes, or write \\\\"),
    ("cannot start any token", "a plain value cannot start with this character; quote it"),
)


def _scrub(text: str) -> str:
    """Drop quoted token text; keep token kinds ('<scalar>') and single punctuation (',')."""
    return _QUOTED.sub(lambda m: m.group(0) if _KEEP.fullmatch(m.group(0)) else "", text).replace("  ", " ").strip()


def describe(e: yaml.YAMLError, text: str) -> tuple[int, int, str]:
    """(line, column, problem) of a PyYAML error, 1-based; never the token text."""
    if isinstance(e, yaml.reader.ReaderError):
        pos = e.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        code = e.character if isinstance(e.character, int) else 0
        if code < 0x20 or 0x7F <= code <= 0x9F:
            what = (f"control character U+{code:04X} is not allowed; remove it, or write it as an escape "
                    f"(\"\\x{code:02x}\") inside a double-quoted string")
        else:
            what = f"character U+{code:04X} is not allowed in YAML"
        return line, column, what
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raw = e.problem or e.context or "syntax error"
        known = next((ours for theirs, ours in _KNOWN if theirs in raw), None)
        problem = known or _scrub(raw)
        if e.context and e.problem and not known:
            context = _scrub(e.context)
            if e.context_mark is not None and e.problem_mark is not None and e.context_mark.line != line - 1:
                context += f" at line {e.context_mark.line + 1}"
            problem = f"{problem} ({context})"
        return line, column, problem
    return 1, 1, f"not valid YAML ({type(e).__name__})"
