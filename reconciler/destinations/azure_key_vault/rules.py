"""Pure Azure Key Vault rules: names, tags, sizes, cloud domains, many-to-one JSON.

Kept free of the Azure SDK so the planner-facing parts (desired state, scope, import
mapping) and their tests never load it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from reconciler.destinations.catalog import NameRule, SyncView
from reconciler.model import OWNER_TAG, OWNER_VALUE, SYNC_TAG

MAX_VALUE_BYTES: Final = 25 * 1024
MAX_TAGS: Final = 15
MAX_TAG_TEXT: Final = 256
MAX_NAME: Final = 127
PAGE_SIZE: Final = 25  # GetSecrets maxresults maximum

_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")

#: Key Vault DNS suffixes per cloud: the challenge's resource must match these, so the SDK's
#: resource verification stays on for them (DESIGN §5a)
VAULT_DOMAINS: Final = (
    "vault.azure.net",  # public
    "vault.azure.cn",  # China (21Vianet)
    "vault.usgovcloudapi.net",  # US Government
    "vault.microsoftazure.de",  # Germany (legacy)
    "managedhsm.azure.net",
    "managedhsm.azure.cn",
    "managedhsm.usgovcloudapi.net",
)

#: Microsoft Entra authority hosts; any other authorityHost gets instance discovery off
MICROSOFT_AUTHORITIES: Final = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
    "login.microsoftonline.de",
)


def to_vault_name(name: str) -> str:
    """The seed's rule: '_' becomes '-' (Key Vault names hold only letters, digits and '-')."""
    return name.replace("_", "-")


def fold(name: str) -> str:
    """Key Vault names compare case-insensitively."""
    return name.lower()


def tag_problems(tags: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags exceed Key Vault's limit of {MAX_TAGS} per secret")
    for k, v in tags.items():
        if not 1 <= len(k) <= MAX_TAG_TEXT:
            problems.append(f"tag name {k[:40]!r} must be 1-{MAX_TAG_TEXT} characters")
        if len(v) > MAX_TAG_TEXT:
            problems.append(f"tag {k[:40]!r} has a value longer than {MAX_TAG_TEXT} characters")
    return problems


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def verifies_challenge(vault_url: str) -> bool:
    """Whether the SDK can check the challenge's resource against this vault's host: only
    for the clouds' vault domains (an emulator or private endpoint would always fail it)."""
    host = _host(vault_url)
    return any(host.endswith("." + d) for d in VAULT_DOMAINS)


def is_loopback(url: str) -> bool:
    host = _host(url)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_microsoft_authority(authority: str) -> bool:
    host = _host(authority if "://" in authority else "https://" + authority)
    return host in MICROSOFT_AUTHORITIES


def same_origin(a: str, b: str) -> bool:
    """Scheme, host and port equal (a nextLink must never send our token elsewhere)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme.lower(), (pa.hostname or "").lower(), pa.port or 443) == (
        pb.scheme.lower(), (pb.hostname or "").lower(), pb.port or 443)


def name_from_id(secret_id: str) -> str | None:
    """``https://{vault}/secrets/{name}[/{version}]`` -> name."""
    parts = urlsplit(secret_id).path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] in ("secrets", "deletedsecrets"):
        return parts[1]
    return None


# -- what the descriptor declares ----------------------------------------------------------

NAMES: Final = NameRule(pattern=re.compile(r"[0-9a-zA-Z-]"), max_length=MAX_NAME, rename=to_vault_name,
                        case_insensitive=True, noun="Key Vault secret name",
                        charset="letters, digits and '-' ('_' is written as '-')")


def vault_url(view: SyncView) -> str:
    return str(view.destination_config.get("vaultBaseUrl") or "").strip().rstrip("/")


def target(view: SyncView) -> tuple[str, ...]:
    return (vault_url(view).lower(),)


def describe(view: SyncView) -> str:
    return f"Key Vault {vault_url(view)}"


def properties(view: SyncView, _metadata: Mapping[str, str]) -> dict[str, str]:
    return {f"tag:{OWNER_TAG}": OWNER_VALUE, f"tag:{SYNC_TAG}": view.sync}


def property_problems(props: Mapping[str, str]) -> list[str]:
    return tag_problems({k[4:]: v for k, v in props.items() if k.startswith("tag:")})
