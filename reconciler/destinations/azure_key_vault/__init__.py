"""Azure Key Vault: the descriptor (SDK-free). The session is ``azure_key_vault.session``."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.destinations.azure_key_vault import rules
from reconciler.destinations.catalog import Capabilities, Descriptor

DESCRIPTOR = Descriptor(
    id="azure-key-vault",
    label="Azure Key Vault",
    apps=("azure-key-vault",),
    schema="destination-azure-key-vault.json",
    names=rules.NAMES,
    capabilities=Capabilities(can_import=True, values_readable=True, tags=True, allows_empty=True,
                              max_value_bytes=rules.MAX_VALUE_BYTES, many_to_one=True),
    target=rules.target,
    describe=rules.describe,
    session="reconciler.destinations.azure_key_vault.session:AzureKeyVault",
    properties=rules.properties,
    property_problems=rules.property_problems,
    defaults=MappingProxyType({"destinationConfig": MappingProxyType({"mappingBehavior": "one-to-one"})}),
    default_method="default",
)
