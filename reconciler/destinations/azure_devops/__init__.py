"""Azure DevOps variable groups: the descriptor (SDK-free). The session is not built yet."""

from __future__ import annotations

from reconciler.destinations.catalog import Capabilities, Descriptor, NameRule, SyncView


def _group(view: SyncView) -> str:
    return str(view.destination_config.get("variableGroupName") or view.environment)


def _target(view: SyncView) -> tuple[str, ...]:
    """One variable group of one project: syncs writing other groups never collide."""
    return (str(view.destination_config.get("devopsProjectId", "")).lower(), _group(view).lower())


def _describe(view: SyncView) -> str:
    return f"Azure DevOps project {view.destination_config.get('devopsProjectId')} group '{_group(view)}'"


DESCRIPTOR = Descriptor(
    id="azure-devops",
    label="Azure DevOps",
    apps=("azure-devops",),
    schema="destination-azure-devops.json",
    names=NameRule(case_insensitive=True, noun="Azure DevOps variable name"),
    capabilities=Capabilities(can_import=False, values_readable=False, tags=False, batched=True),
    target=_target,
    describe=_describe,
)
