"""Pure AWS Secrets Manager rules: names, KMS key identities, tags, request tokens, JSON.

Kept free of boto3 so the planner-facing parts (desired state, scope) and their tests never
load the SDK.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Final

DEFAULT_KMS: Final = "alias/aws/secretsmanager"
MAX_VALUE_BYTES: Final = 65536
MAX_TAGS: Final = 50
RESERVED_TAG_PREFIX: Final = "aws:"

_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
#: AWS appends "-" + 6 random characters to build the ARN; a name that already ends like
#: that is ambiguous in partial-ARN lookups.
_ARN_SUFFIX_LIKE = re.compile(r"-[A-Za-z0-9]{6}$")
#: ListSecrets filter values (botocore model FilterValueStringType); a leading "!" negates.
_FILTER_VALUE = re.compile(r"^[a-zA-Z0-9 :_@/+=.-]{1,512}$")
#: source keys we hand back on import: the AWS charset minus "/" (upstream rejects ":" and
#: "/" in source keys, issue #5366; AWS names never contain ":").
_IMPORTABLE_KEY = re.compile(r"^[A-Za-z0-9_+=.@-]+$")
#: fixed namespace: tokens stay stable across processes and releases
_TOKEN_NS: Final = uuid.UUID("5b0c3f8e-6a57-4d0a-9a59-2f7f3c1f7e11")


def normalize_kms_key(value: str | None) -> str:
    """One spelling per KMS key, so a listing's ARN (or its silence about the default key)
    compares equal to what the spec says. Upstream compared raw strings and rewrote every
    secret on every sync."""
    v = (value or "").strip()
    if not v:
        return DEFAULT_KMS
    if v.startswith("arn:"):
        parts = v.split(":", 5)
        v = parts[5] if len(parts) == 6 else v
    if v.startswith("key/"):
        v = v[len("key/") :]
    return v


def name_problems(name: str) -> list[str]:
    """Why AWS would refuse this secret name (empty when it is fine)."""
    if _NAME.match(name):
        return []
    if not name or len(name) > 512:
        return [f"AWS secret name {name!r} must be 1-512 characters long"]
    return [f"AWS secret name {name!r} may only contain letters, digits and /_+=.@-"]


def ambiguous_suffix(name: str) -> bool:
    return bool(_ARN_SUFFIX_LIKE.search(name))


def tag_problems(tags: Mapping[str, str]) -> list[str]:
    """AWS tag limits, checked at plan time rather than failing mid-apply."""
    problems: list[str] = []
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags exceed AWS's limit of {MAX_TAGS} per secret")
    for k, v in tags.items():
        if not 1 <= len(k) <= 128:
            problems.append(f"tag key {k!r} must be 1-128 characters")
        elif k.lower().startswith(RESERVED_TAG_PREFIX):
            problems.append(f"tag key {k!r} uses the reserved prefix 'aws:'")
        if len(v) > 256:
            problems.append(f"tag {k!r} has a value longer than 256 characters")
    return problems


def usable_filter_prefix(prefix: str | None) -> str | None:
    """The prefix as a ListSecrets name filter, or None when AWS would reject or negate it."""
    if not prefix or prefix.startswith("!") or not _FILTER_VALUE.match(prefix):
        return None
    return prefix


def importable_key(key: str) -> bool:
    return bool(_IMPORTABLE_KEY.match(key))








def request_token(*parts: str) -> str:
    """A ClientRequestToken (36 chars, within AWS's 32-64) derived from ``parts``.

    AWS ignores a write whose token names an existing version with the same value, so a
    token must change whenever the write is meant to land anew: callers include the version
    being replaced, otherwise A -> B -> A would be silently dropped.
    """
    return str(uuid.uuid5(_TOKEN_NS, "\x1f".join(parts)))


def random_token() -> str:
    return str(uuid.uuid4())
