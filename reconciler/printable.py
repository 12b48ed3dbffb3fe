"""Text from outside (file names, spec strings) made safe to print on one line.

A file name or a spec value may hold ANSI escapes or newlines: printed raw, a pull request's
file name could repaint a CI log or forge a diagnostic line of its own. Its own module so that
every layer can use it (the plan renderer, spec diagnostics).
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``); printable ones kept."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == " " else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )
