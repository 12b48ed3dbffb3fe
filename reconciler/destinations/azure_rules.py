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


def name_problem(name: str) -> str | None:
    """Why Key Vault would refuse this secret name (None when it is fine)."""
    if _NAME.match(name):
        return None
    if not name or len(name) > MAX_NAME:
        return f"Key Vault secret name {name[:140]!r} must be 1-{MAX_NAME} characters long"
    return f"Key Vault secret name {name!r} may only contain letters, digits and '-'"


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





