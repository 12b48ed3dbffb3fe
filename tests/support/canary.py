"""Canary secret values: every test that writes one must prove it never shows up in output,
logs, state or plan files. The scan looks for the raw value and its common encodings."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

CANARIES = (
    "CANARY-7f3a9c1e-do-not-leak",
    "canary-pw-Zq8!x2#Lm",
    "CANARY-second-b64-9d2e",
)


def forms(value: str) -> list[str]:
    return [
        value,
        base64.b64encode(value.encode()).decode(),
        json.dumps(value)[1:-1],
        value.encode().hex(),
    ]


def find_leaks(texts: Iterable[str | bytes], canaries: Iterable[str] = CANARIES) -> list[str]:
    leaks: list[str] = []
    needles = [f for c in canaries for f in forms(c)]
    for t in texts:
        s = t.decode("utf-8", "replace") if isinstance(t, bytes) else t
        for n in needles:
            if n in s:
                leaks.append(n)
    return leaks


def scan_tree(root: Path, canaries: Iterable[str] = CANARIES) -> list[str]:
    """Leaks found in any file below root (state DBs included: scanned as bytes)."""
    found: list[str] = []
    for p in root.rglob("*"):
        if p.is_file():
            for leak in find_leaks([p.read_bytes()], canaries):
                found.append(f"{p}: {leak}")
    return found
