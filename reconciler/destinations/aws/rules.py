"""Pure AWS Secrets Manager rules: names, KMS key identities, tags, request tokens, and what
the descriptor declares (target identity, properties, spec rules).

Kept free of boto3: specs, planner and their tests use these without loading the SDK.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any, Final

from reconciler import keyschema
from reconciler.destinations.catalog import Finding, NameRule, SyncView
from reconciler.model import OWNER_TAG, OWNER_VALUE, SYNC_TAG

DEFAULT_KMS: Final = "alias/aws/secretsmanager"
MAX_VALUE_BYTES: Final = 65536
MAX_TAGS: Final = 50
RESERVED_TAG_PREFIX: Final = "aws:"

#: AWS appends "-" + 6 random characters to build the ARN; a name that already ends like
#: that is ambiguous in partial-ARN lookups.
_ARN_SUFFIX_LIKE = re.compile(r"-[A-Za-z0-9]{6}$")
#: ListSecrets filter values (botocore model FilterValueStringType); a leading "!" negates.
_FILTER_VALUE = re.compile(r"^[a-zA-Z0-9 :_@/+=.-]{1,512}$")
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
        elif not _tag_text(k):
            problems.append(f"tag key {k!r} may only contain {_TAG_CHARSET}")
        if len(v) > 256:
            problems.append(f"tag {k!r} has a value longer than 256 characters")
        elif not _tag_text(v):  # the value is not shown: it may come from a secret's metadata
            problems.append(f"tag {k!r} has a value that may only contain {_TAG_CHARSET}")
    return problems


_TAG_EXTRA: Final = frozenset("_.:/=+-@")
_TAG_CHARSET: Final = "letters, digits, spaces and _.:/=+-@"


def _tag_text(text: str) -> bool:
    """AWS's tag charset ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`` (Python's ``re`` has no ``\\p``)."""
    return all(c in _TAG_EXTRA or unicodedata.category(c)[0] in "LZN" for c in text)


def usable_filter_prefix(prefix: str | None) -> str | None:
    """The prefix as a ListSecrets name filter, or None when AWS would reject or negate it."""
    if not prefix or prefix.startswith("!") or not _FILTER_VALUE.match(prefix):
        return None
    return prefix



def request_token(*parts: str) -> str:
    """A ClientRequestToken (36 chars, within AWS's 32-64) derived from ``parts``.

    AWS ignores a write whose token names an existing version with the same value, so a
    token must change whenever the write is meant to land anew: callers include the version
    being replaced, otherwise A -> B -> A would be silently dropped.
    """
    return str(uuid.uuid5(_TOKEN_NS, "\x1f".join(parts)))


def random_token() -> str:
    return str(uuid.uuid4())


# -- what the descriptor declares ----------------------------------------------------------

NAMES: Final = NameRule(pattern=re.compile(r"[A-Za-z0-9/_+=.@-]"), max_length=512, noun="AWS secret name",
                        charset="letters, digits and /_+=.@-")
RESERVED_TAGS: Final = (OWNER_TAG, SYNC_TAG)
PROPERTY_NAMES: Final = {"kms": "KMS key"}


def region(view: SyncView) -> str:
    return str(view.destination_config.get("region") or view.connection_settings.get("region") or "")


def target(view: SyncView) -> tuple[str, ...]:
    """One account and region: the connection names the account (two connections to one
    account are not recognised as one target — an overlap across them goes unnoticed)."""
    return (view.connection, region(view))


def describe(view: SyncView) -> str:
    return f"AWS Secrets Manager region {region(view) or '?'} of connection '{view.connection}'"


def properties(view: SyncView, metadata: Mapping[str, str]) -> dict[str, str]:
    """KMS key and tags: source metadata (syncSecretMetadataAsTags), configured tags, then
    our ownership tags, later ones winning."""
    opts = view.sync_options
    tags: dict[str, str] = {}
    if not view.many_to_one and opts.get("syncSecretMetadataAsTags"):
        tags.update(metadata)
    tags.update(configured_tags(opts.get("tags")))
    tags[OWNER_TAG] = OWNER_VALUE
    tags[SYNC_TAG] = view.sync
    props = {"kms": normalize_kms_key(str(opts["keyId"]) if opts.get("keyId") else None)}
    props.update({f"tag:{k}": v for k, v in tags.items()})
    return props


def property_problems(props: Mapping[str, str]) -> list[str]:
    return tag_problems({k[4:]: v for k, v in props.items() if k.startswith("tag:")})


def configured_tags(raw: Any) -> dict[str, str]:
    """syncOptions.tags as written in specs: [{key, value}] (a plain mapping is accepted)."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, list | tuple) else ():
        if isinstance(item, Mapping) and "key" in item:
            out[str(item["key"])] = str(item.get("value", ""))
    return out


def spec_findings(data: Mapping[str, Any]) -> list[Finding]:
    """Spec rules JSON Schema cannot say: tags, metadata-as-tags with many-to-one, and the
    many-to-one name as rendered through the key schema."""
    cfg = data.get("destinationConfig") if isinstance(data.get("destinationConfig"), Mapping) else {}
    opts = data.get("syncOptions") if isinstance(data.get("syncOptions"), Mapping) else {}
    assert isinstance(cfg, Mapping) and isinstance(opts, Mapping)
    out: list[Finding] = []
    many = cfg.get("mappingBehavior") == "many-to-one"
    if many and opts.get("syncSecretMetadataAsTags"):
        out.append(Finding(("syncOptions", "syncSecretMetadataAsTags"),
                           "syncSecretMetadataAsTags cannot be used with mappingBehavior many-to-one "
                           "(one secret holds many keys, each with its own metadata)"))
    first: dict[str, int] = {}
    tags = opts.get("tags")
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        key = tag.get("key") if isinstance(tag, Mapping) else None
        if not isinstance(key, str):
            continue
        if key in first:
            out.append(Finding(("syncOptions", "tags", i, "key"),
                               f"duplicate tag key '{key}' (also tags[{first[key]}])"))
        first.setdefault(key, i)
        if key in RESERVED_TAGS:
            out.append(Finding(("syncOptions", "tags", i, "key"),
                               f"tag key '{key}' is reserved for reconciler's ownership markers"))
    env = data.get("environment") if isinstance(data.get("environment"), str) else ""
    ks = opts.get("keySchema") if isinstance(opts.get("keySchema"), str) else None
    assert isinstance(env, str)
    if ks is not None and keyschema.validate(ks):
        return out  # reported as a keySchema problem; renderings would only repeat it
    secret_name = cfg.get("secretName")
    if many and isinstance(secret_name, str) and not NAMES.problem(secret_name):
        name = keyschema.render(ks, secret_name, env)
        problem = NAMES.problem(name)
        if problem:
            out.append(Finding(("destinationConfig", "secretName"), f"rendered through keySchema, the {problem}"))
        elif ambiguous_suffix(name):
            out.append(Finding(("destinationConfig", "secretName"),
                               f"secret name '{name}' ends in '-' and six characters, which AWS "
                               "advises against (it looks like an ARN suffix)", "warning"))
    elif ks and len(keyschema.render(ks, "", env)) >= (NAMES.max_length or 0):
        out.append(Finding(("syncOptions", "keySchema"),
                           f"keySchema leaves no room for the key in AWS's {NAMES.max_length} characters"))
    return out
