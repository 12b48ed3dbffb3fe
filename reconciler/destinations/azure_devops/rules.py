"""Pure Azure DevOps rules: variable names, which group a sync writes, target identity and
the spec checks JSON Schema cannot say. SDK- and httpx-free (specs and planner load it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from reconciler.destinations.catalog import Finding, NameRule, SyncView

#: pipelines read variables case-insensitively; the docs name letters, digits, '.' and '_',
#: and variable groups accept '-' too (the docs' own examples use it)
NAMES: Final = NameRule(pattern=re.compile(r"[A-Za-z0-9._-]"), charset="letters, digits, '.', '_' and '-'",
                        case_insensitive=True, noun="Azure DevOps variable name")
GUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def group_name(view: SyncView) -> str:
    """The one variable group a sync writes: ``variableGroupName``, else the environment
    (upstream names it after the environment)."""
    return str(view.destination_config.get("variableGroupName") or view.environment)


def organization(view: SyncView) -> str:
    return str(view.connection_settings.get("organizationUrl") or "").strip().rstrip("/").lower()


def target(view: SyncView) -> tuple[str, ...]:
    """One variable group of one project: syncs writing other groups never collide, two syncs
    with different environments on one project are independent."""
    project = str(view.destination_config.get("devopsProjectId", "")).lower()
    return (organization(view), project, group_name(view).lower())


def describe(view: SyncView) -> str:
    cfg = view.destination_config
    project = cfg.get("devopsProjectName") or cfg.get("devopsProjectId")
    return f"Azure DevOps project {project} variable group '{group_name(view)}'"


def spec_findings(data: Mapping[str, Any]) -> list[Finding]:
    """The project reference a group needs is the project's GUID (a name is refused by the
    service when creating the group)."""
    cfg = data.get("destinationConfig")
    project = cfg.get("devopsProjectId") if isinstance(cfg, Mapping) else None
    if isinstance(project, str) and project and not GUID.match(project):
        return [Finding(("destinationConfig", "devopsProjectId"),
                        f"devopsProjectId must be the project's ID (a GUID), not {project[:60]!r}; "
                        "the project's name goes in devopsProjectName")]
    return []
