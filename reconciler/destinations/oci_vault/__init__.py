"""OCI Vault: the descriptor (SDK-free). The session is ``oci_vault.session``, on the oci SDK."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.destinations.catalog import Capabilities, Descriptor
from reconciler.destinations.oci_vault import rules

DESCRIPTOR = Descriptor(
    id="oci-vault",
    label="OCI Vault",
    apps=("oci",),
    schema="destination-oci-vault.json",
    names=rules.NAMES,
    capabilities=Capabilities(can_import=True, values_readable=True, tags=True, allows_empty=False,
                              max_value_bytes=rules.MAX_VALUE_BYTES),
    target=rules.target,
    describe=rules.describe,
    session="reconciler.destinations.oci_vault.session:OciVault",
    properties=rules.properties,
    rules=rules.spec_findings,
    defaults=MappingProxyType({"syncOptions": MappingProxyType(
        {"deletionWindowInDays": rules.DEFAULT_DELETION_DAYS})}),
)
