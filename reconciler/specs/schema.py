"""JSON Schema validation of spec documents, with short messages a person can act on.

The schemas (``reconciler/schemas/*.json``, published as ``schemas/``) are the contract
editors see. Here they run with every error reported, not just the first, and each error
is rewritten: jsonschema's own messages repr the whole instance, which could be a
credential someone pasted literally. Values are shown only when short, scalar and outside
``credentials``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from reconciler.specs.model import Diagnostic
from reconciler.specs.yamlload import Document, PathElem, json_path

if TYPE_CHECKING:
    from jsonschema import ValidationError

BASE_URI: Final = "https://reconciler.invalid/schemas/v1/"
ROOT_URI: Final = BASE_URI + "reconciler.schema.json"
KINDS: Final = ("SecretSync", "Connection", "Notifier")

_TYPE_NAMES: Final = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}
_TAG_EXTRA: Final = frozenset("_.:/=+-@")


def yaml_type(value: Any) -> str:
    """What a YAML reader would call the value's type (never the value)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return f"a {type(value).__name__}"


def _is_tag_text(value: object) -> bool:
    """AWS tag charset ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: Python's ``re`` has no ``\\p``."""
    if not isinstance(value, str):
        return True
    return all(c in _TAG_EXTRA or unicodedata.category(c)[0] in "LZN" for c in value)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """``pattern`` where a final ``$`` means end of string: Python's ``$`` lets "x\\n" pass."""
    if not validator.is_type(instance, "string"):
        return
    effective = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if not re.search(effective, instance):
        from jsonschema import ValidationError

        yield ValidationError(f"does not match {pattern!r}")


def _is_http_url(value: object) -> bool:
    """A host and port urllib can parse: the pattern lets ``host:abc`` and ``[::1`` through,
    and the HTTP clients then fail at the first run instead of here."""
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        return False
    return bool(parts.hostname)


def _type(validator: Any, types: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """``type``, where YAML's ``.nan`` and ``.inf`` are no number: NaN passes every minimum and
    maximum (each comparison is false), and reached the HTTP clients as a timeout."""
    numeric = {"number", "integer"} & set(types if isinstance(types, list) else [types])
    if numeric and isinstance(instance, float) and not math.isfinite(instance):
        from jsonschema import ValidationError

        yield ValidationError("not a finite number")
        return
    from jsonschema import Draft202012Validator

    yield from Draft202012Validator.VALIDATORS["type"](validator, types, instance, schema)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker, validators
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    # "$schema" is dropped: jsonschema would switch back to the stock Draft202012Validator
    # (and its `pattern`) at every resource root that names it.
    documents = schema_documents()
    found = [(BASE_URI + name, DRAFT202012.create_resource({k: v for k, v in doc.items() if k != "$schema"}))
             for name, doc in documents.items()]
    registry: Registry[Any] = Registry().with_resources(found)
    formats = FormatChecker(formats=())
    formats.checks("aws-tag-text")(_is_tag_text)
    formats.checks("http-url")(_is_http_url)
    cls = validators.extend(Draft202012Validator, {"pattern": _pattern, "type": _type})
    root = _inline(documents[ROOT_URI.removeprefix(BASE_URI)], ROOT_URI.removeprefix(BASE_URI), documents, (), {})
    return cls(root, registry=registry, format_checker=formats)


def _inline(node: Any, base: str, documents: dict[str, Any], seen: tuple[int, ...], done: dict[int, Any]) -> Any:
    """The schema with every ``$ref`` replaced by what it points at, once, here: resolving
    references per document was two thirds of validating a thousand specs. A ``$ref``'s only
    siblings in our schemas are descriptions; a reference cycle is left as a ``$ref``.

    Our references are all relative — ``file.json``, ``file.json#/pointer`` or ``#/pointer``
    — to schemas that each carry one ``$id`` under :data:`BASE_URI` (the tests hold every
    schema to that), so they are followed here directly; ``done`` holds each target already
    inlined, so a definition referenced fifty times is walked once and shared."""
    if isinstance(node, list):
        return [_inline(n, base, documents, seen, done) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target_base, target = _lookup(node["$ref"], base, documents)
        key = id(target)
        if key in seen:
            return node
        if key not in done:
            done[key] = _inline(target, target_base, documents, (*seen, key), done)
        return done[key]
    return {k: _inline(v, base, documents, seen, done) if k not in ("$id", "$schema") else v
            for k, v in node.items() if not (seen and k in ("$id", "$schema"))}


def _lookup(ref: str, base: str, documents: dict[str, Any]) -> tuple[str, Any]:
    """The schema node ``ref`` names, read from ``base`` (a file name), and its file."""
    name, _, pointer = ref.partition("#")
    name = name or base
    if name not in documents or (pointer and not pointer.startswith("/")):
        raise ValueError(f"{base}: $ref {ref!r} is not a reference to one of our schemas")
    node = documents[name]
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return name, node


def schema_documents() -> dict[str, Any]:
    """Every published schema by file name (for tests and tooling)."""
    out: dict[str, Any] = {}
    for entry in resources.files("reconciler").joinpath("schemas").iterdir():
        if entry.name.endswith(".json"):
            out[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return out


def validate(doc: Document) -> list[Diagnostic]:
    """All schema findings for one document, sorted by line, duplicates removed."""
    found: dict[tuple[int, str, str], Diagnostic] = {}
    for error in _validator().iter_errors(doc.data):
        for d in _diagnostics(error, doc):
            found.setdefault((d.line, d.path, d.message), d)
    return sorted(found.values(), key=lambda d: (d.line, d.path, d.message))


def _shown(value: Any, path: Sequence[PathElem]) -> str | None:
    """A short printable rendering of ``value``, or None when it must not be echoed."""
    if "credentials" in path and tuple(path) != ("credentials", "method"):
        return None
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= 80 and value.isprintable():
        return repr(value)
    return None


def _got(value: Any, path: Sequence[PathElem]) -> str:
    shown = _shown(value, path)
    return f" (got {shown})" if shown is not None else ""


def _diagnostics(error: ValidationError, doc: Document) -> Iterator[Diagnostic]:
    path: tuple[PathElem, ...] = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    kind = error.validator
    if "x-message" in schema and kind not in ("required",):
        yield doc.diagnostic(path, str(schema["x-message"]))
    elif kind == "required" and isinstance(instance, dict):
        for name in error.validator_value:
            if name not in instance:
                hint = f" ({', '.join(KINDS[:-1])} or {KINDS[-1]})" if name == "kind" and not path else ""
                yield doc.diagnostic((*path, name), f"missing required field '{name}'{hint}")
    elif kind == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        for extra in (str(k) for k in instance if k not in known):
            yield doc.diagnostic((*path, extra), f"unknown field '{extra}'{_suggest(extra, known)}")
    elif kind == "enum" and path == ("kind",):
        shown = f" {_shown(instance, path)}" if _shown(instance, path) else ""
        yield doc.diagnostic(path, f"unknown kind{shown}; allowed kinds: {', '.join(KINDS)}")
    else:
        yield doc.diagnostic(path, _message(error, path, schema))


def _suggest(name: str, known: list[str]) -> str:
    import difflib

    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def _message(error: ValidationError, path: Sequence[PathElem], schema: dict[str, Any]) -> str:
    kind, expected, instance = error.validator, error.validator_value, error.instance
    got = _got(instance, path)
    if kind == "type":
        if isinstance(instance, float) and not math.isfinite(instance):
            return f"must be a finite number (got {instance!r})"
        if "x-expected" in schema:
            return f"must be {schema['x-expected']} (got {yaml_type(instance)})"
        names = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(str(_TYPE_NAMES.get(n, n)) for n in names)
        return f"must be {wanted} (got {yaml_type(instance)})"
    if kind == "enum":
        return f"must be one of: {', '.join(str(v) for v in expected)}{got}"
    if kind == "const":
        return f"must be {expected}{got}"
    if kind in ("pattern", "format"):
        what = schema.get("x-expected") or f"the pattern {expected}"
        shown = _shown(instance, path)
        return f"{shown} does not match {what}" if shown else f"does not match {what}"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters (got {len(instance)})"
    if kind == "minimum":
        return f"must be at least {expected}{got}"
    if kind == "maximum":
        return f"must be at most {expected}{got}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {expected}{got}"
    if kind == "exclusiveMaximum":
        return f"must be less than {expected}{got}"
    if kind == "uniqueItems" and isinstance(instance, list):
        texts = [v for v in instance if isinstance(v, str)]
        twice = next((v for i, v in enumerate(texts) if v in texts[:i]), None)
        return f"lists {twice!r} twice" if twice is not None else "must not list an item twice"
    if kind == "maxItems":
        return f"must have at most {expected} items (got {len(instance)})"
    if kind == "minItems":
        return f"must have at least {expected} items"
    if kind in ("minProperties", "maxProperties"):
        return f"must have {'at least' if kind == 'minProperties' else 'at most'} {expected} fields"
    if kind in ("not", None):  # None: a `false` schema
        return "is not allowed here"
    if kind in ("anyOf", "oneOf"):
        return "does not match any allowed form"
    return f"is invalid ({kind})"


__all__ = ["BASE_URI", "KINDS", "ROOT_URI", "json_path", "schema_documents", "validate", "yaml_type"]
