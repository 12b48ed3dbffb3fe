"""Azure DevOps variable groups: the descriptor (SDK-free). The session is
``azure_devops.session``, REST over httpx."""

from __future__ import annotations

from reconciler.destinations.azure_devops import rules
from reconciler.destinations.catalog import Capabilities, Descriptor

DESCRIPTOR = Descriptor(
    id="azure-devops",
    label="Azure DevOps",
    apps=("azure-devops",),
    schema="destination-azure-devops.json",
    names=rules.NAMES,
    # write-only secrets; an empty value sent for a secret is ignored by the service (the old
    # value stays), so "" cannot be stored over a secret: treated as absent, as AWS does
    capabilities=Capabilities(can_import=False, values_readable=False, tags=False, allows_empty=False,
                              batched=True),
    target=rules.target,
    describe=rules.describe,
    session="reconciler.destinations.azure_devops.session:AzureDevOpsVariableGroup",
    rules=rules.spec_findings,
    default_method="pat",
    unreadable_drift="the group changed outside reconciler",
)
