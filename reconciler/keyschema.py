"""Key schemas with upstream's exact semantics, minus its HTML escaping.

A key schema such as ``app/{{environment}}/{{secretKey}}`` renames source keys into
destination names and, read backwards, decides which destination keys a sync owns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

SECRET_KEY: Final = "{{secretKey}}"
ENVIRONMENT: Final = "{{environment}}"
MAX_LENGTH: Final = 255
_CHARSET = re.compile(r"^(?:[a-zA-Z0-9_\-/]|\{\{secretKey\}\}|\{\{environment\}\})*$")


def validate(schema: str) -> list[str]:
    """Problems with a key schema, as messages (empty when valid)."""
    problems: list[str] = []
    s = schema.strip()
    if len(s) > MAX_LENGTH:
        problems.append(f"key schema is longer than {MAX_LENGTH} characters")
    if not _CHARSET.match(s):
        hint = ""
        if "${" in s or "{{ " in s or "{{secret_key}}" in s:
            hint = " (placeholders are written exactly {{secretKey}} and {{environment}})"
        problems.append(
            "key schema may only contain letters, digits, '_', '-', '/' and the placeholders "
            "{{secretKey}} and {{environment}}" + hint
        )
    if SECRET_KEY not in s:
        problems.append("key schema must contain {{secretKey}}")
    return problems


def render(schema: str | None, secret_key: str, environment: str) -> str:
    """Destination name for ``secret_key``: plain substitution, no escaping."""
    if not schema:
        return secret_key
    # substitute environment first so an environment slug can never inject a placeholder
    return schema.strip().replace(ENVIRONMENT, environment).replace(SECRET_KEY, secret_key)


def _affixes(schema: str, environment: str) -> tuple[str, str] | None:
    """(prefix, suffix) around the first/last {{secretKey}}, or None when the schema has none."""
    compiled = schema.strip().replace(ENVIRONMENT, environment)
    if SECRET_KEY not in compiled:
        return None
    parts = compiled.split(SECRET_KEY)
    return parts[0], parts[-1]


def matches(key: str, schema: str | None, environment: str) -> bool:
    """Whether ``key`` is in the scope of ``schema`` (upstream ``matchesSchema``)."""
    if not schema:
        return True
    affixes = _affixes(schema, environment)
    if affixes is None:
        return key == schema.strip().replace(ENVIRONMENT, environment)
    prefix, suffix = affixes
    if not prefix and not suffix:
        return True
    if len(key) < len(prefix) + len(suffix):
        return False
    if not (key.startswith(prefix) and key.endswith(suffix)):
        return False
    if "/" in prefix or "/" in suffix:
        middle = key[len(prefix) : len(key) - len(suffix)]
        if "/" in middle:
            return False
    return True


def strip(key: str, schema: str | None, environment: str) -> str | None:
    """The source key a destination key came from, or None when it is out of scope."""
    if not matches(key, schema, environment):
        return None
    if not schema:
        return key
    affixes = _affixes(schema, environment)
    if affixes is None:
        return None
    prefix, suffix = affixes
    return key[len(prefix) : len(key) - len(suffix)] if suffix else key[len(prefix) :]


def literal_prefix(schema: str | None, environment: str) -> str:
    """The literal text every in-scope key starts with ('' when none): a server-side filter."""
    if not schema:
        return ""
    affixes = _affixes(schema, environment)
    if affixes is None:
        return schema.strip().replace(ENVIRONMENT, environment)
    return affixes[0]


def transform(schema: str | None, fn: Callable[[str], str]) -> str | None:
    """Apply a destination's name rule to a schema's literal parts, keeping placeholders."""
    if not schema:
        return schema
    out: list[str] = []
    for token in re.split(r"(\{\{secretKey\}\}|\{\{environment\}\})", schema.strip()):
        out.append(token if token in (SECRET_KEY, ENVIRONMENT) else fn(token))
    return "".join(out)

