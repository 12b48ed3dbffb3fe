"""Key schemas with upstream's exact semantics, minus its HTML escaping.

A key schema such as ``app/{{environment}}/{{secretKey}}`` renames source keys into
destination names and, read backwards, decides which destination keys a sync owns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

SECRET_KEY: Final = "{{secretKey}}"  # noqa: S105 - a placeholder, not a credential
ENVIRONMENT: Final = "{{environment}}"
MAX_LENGTH: Final = 255
_CHARSET = re.compile(r"^(?:[a-zA-Z0-9_\-/]|\{\{secretKey\}\}|\{\{environment\}\})*$")
_PLACEHOLDER = re.compile(r"(\{\{secretKey\}\}|\{\{environment\}\})")


def _norm(schema: str | None) -> str | None:
    """Upstream trims the schema; an empty (or blank) schema means "no schema"."""
    if schema is None:
        return None
    s = schema.strip()
    return s or None


def validate(schema: str) -> list[str]:
    """Problems with a key schema, as messages (empty when valid)."""
    problems: list[str] = []
    s = schema.strip()
    if len(s) > MAX_LENGTH:
        problems.append(f"key schema is longer than {MAX_LENGTH} characters")
    if not _CHARSET.match(s):
        hint = ""
        # what is left once the real placeholders are gone: braces or '$' mean a misspelt one
        leftover = _PLACEHOLDER.sub("", s)
        if any(c in leftover for c in "{}$"):
            hint = " (placeholders are written exactly {{secretKey}} and {{environment}})"
        problems.append(
            "key schema may only contain letters, digits, '_', '-', '/' and the placeholders "
            "{{secretKey}} and {{environment}}" + hint
        )
    if SECRET_KEY not in s:
        problems.append("key schema must contain {{secretKey}}")
    return problems


def render(schema: str | None, secret_key: str, environment: str) -> str:
    """Destination name for ``secret_key``: plain substitution, no escaping.

    One pass over the schema, so neither the key nor the environment can inject a placeholder.
    """
    s = _norm(schema)
    if s is None:
        return secret_key
    return _PLACEHOLDER.sub(lambda m: secret_key if m.group(0) == SECRET_KEY else environment, s)


def _parts(schema: str, environment: str) -> list[str]:
    """Literal parts between the {{secretKey}} placeholders, environment substituted."""
    return [p.replace(ENVIRONMENT, environment) for p in schema.split(SECRET_KEY)]


def matches(key: str, schema: str | None, environment: str) -> bool:
    """Whether ``key`` is in the scope of ``schema`` (upstream ``matchesSchema``).

    One deliberate generalisation of upstream's ``/`` rule (PR #5142): the middle may hold as
    many ``/`` as the schema's own inner literals (``a/{{secretKey}}/b/{{secretKey}}``), so a
    schema always claims its own renderings. For one placeholder this is upstream's rule.
    """
    s = _norm(schema)
    if s is None:
        return True
    parts = _parts(s, environment)
    if len(parts) == 1:
        return key == parts[0]
    prefix, suffix = parts[0], parts[-1]
    if not prefix and not suffix:
        return True
    if len(key) < len(prefix) + len(suffix):
        return False
    if not (key.startswith(prefix) and key.endswith(suffix)):
        return False
    if "/" in prefix or "/" in suffix:
        middle = key[len(prefix) : len(key) - len(suffix)]
        if middle.count("/") > sum(p.count("/") for p in parts[1:-1]):
            return False
    return True


def strip(key: str, schema: str | None, environment: str) -> str | None:
    """The source key ``key`` was rendered from, or None when no source key renders to it.

    Exact inverse of :func:`render` for in-scope keys: every ``{{secretKey}}`` holds the same
    text, so its length is fixed by the key's length. Unlike upstream, a key that no non-empty
    source key renders to (``APP_`` for ``APP_{{secretKey}}``) gives None, so it is never
    imported as a bogus source key.
    """
    if not matches(key, schema, environment):
        return None
    s = _norm(schema)
    if s is None:
        return key
    parts = _parts(s, environment)
    count = len(parts) - 1
    if count == 0:
        return None
    rest = len(key) - sum(len(p) for p in parts)
    if rest <= 0 or rest % count:
        return None
    candidate = key[len(parts[0]) : len(parts[0]) + rest // count]
    return candidate if render(s, candidate, environment) == key else None


def literal_prefix(schema: str | None, environment: str) -> str:
    """The literal text every in-scope key starts with ('' when none): a server-side filter."""
    s = _norm(schema)
    if s is None:
        return ""
    return _parts(s, environment)[0]


def transform(schema: str | None, fn: Callable[[str], str]) -> str | None:
    """Apply a destination's name rule to a schema's literal parts, keeping placeholders."""
    s = _norm(schema)
    if s is None:
        return schema
    out: list[str] = []
    for token in _PLACEHOLDER.split(s):
        out.append(token if token in (SECRET_KEY, ENVIRONMENT) else fn(token))
    return "".join(out)
