"""OCI Vault: the descriptor (SDK-free). The session is not built yet."""

from __future__ import annotations

import re

from reconciler.destinations.catalog import Capabilities, Descriptor, NameRule, SyncView


def _target(view: SyncView) -> tuple[str, ...]:
    return (str(view.destination_config.get("vaultOcid", "")),)


def _describe(view: SyncView) -> str:
    return f"OCI vault {view.destination_config.get('vaultOcid')}"


DESCRIPTOR = Descriptor(
    id="oci-vault",
    label="OCI Vault",
    apps=("oci",),
    schema="destination-oci-vault.json",
    names=NameRule(pattern=re.compile(r"[A-Za-z0-9_.-]"), max_length=255, case_insensitive=True,
                   noun="OCI secret name", charset="letters, digits, '-', '_' and '.'"),
    capabilities=Capabilities(allows_empty=False),
    target=_target,
    describe=_describe,
)
