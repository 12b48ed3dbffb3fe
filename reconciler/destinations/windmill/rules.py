"""Windmill's rules, pure: variable paths, value and description limits, the target.

From protocols.md §1 (the server's DB constraints): a path matches ``^[ufg](/[\\w-]+){2,}$``
and is at most 255 characters; a secret value is stored encrypted in a VARCHAR(15000), so
about 11 KB of plaintext fit; a description holds at most 10,000 characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from reconciler.destinations.catalog import NameRule, SyncView

DEFAULT_URL: Final = "https://app.windmill.dev"
#: a value whose ciphertext always fits the server's VARCHAR(15000) (base64 of AES blocks)
MAX_VALUE_BYTES: Final = 11_000
MAX_DESCRIPTION: Final = 10_000
DESCRIPTION: Final = "description"
#: a property, so a variable someone made plain (its value shown in every list) is planned
#: back to secret, and the plan says so
SECRET: Final = "is_secret"  # noqa: S105 - a property name, not a credential

NAMES: Final = NameRule(
    pattern=re.compile(r"[A-Za-z0-9_/-]"), max_length=255, charset="letters, digits, '_', '-' and '/'",
    folders=True, noun="Windmill variable path")
PROPERTY_NAMES: Final = {DESCRIPTION: "description", SECRET: "secret flag"}


def instance_url(view: SyncView) -> str:
    return str(view.connection_settings.get("instanceUrl") or DEFAULT_URL).strip().rstrip("/")


def target(view: SyncView) -> tuple[str, ...]:
    """Instance and workspace. The folder path is part of the key, not the target: a sync on
    f/a/ lists f/a/b/ too, so two syncs there are checked for overlapping scopes."""
    return (instance_url(view).lower(), str(view.destination_config.get("workspace", "")).strip().lower())


def describe(view: SyncView) -> str:
    return f"Windmill workspace {view.destination_config.get('workspace')}"


def base(view: SyncView) -> str:
    return str(view.destination_config.get("path", ""))


def properties(_view: SyncView, _metadata: Mapping[str, str]) -> dict[str, str]:
    """Every variable we hold is secret; the description comes from the comment
    (``Descriptor.comment_property``)."""
    return {SECRET: "true"}


def property_problems(props: Mapping[str, str]) -> list[str]:
    description = props.get(DESCRIPTION, "")
    if len(description) > MAX_DESCRIPTION:
        return [f"the comment is {len(description)} characters; a Windmill description holds at most "
                f"{MAX_DESCRIPTION:,}"]
    return []
