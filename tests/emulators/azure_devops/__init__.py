"""Azure DevOps emulator (organization prefix, PAT auth, location discovery, projects,
variable groups, faults, counts). Test infrastructure: never imported by ``reconciler``."""

from tests.emulators.azure_devops.organization import GUID, Group, Identity, Organization, Project, Variable
from tests.emulators.azure_devops.server import LOCATIONS, SERVICE_PRINCIPAL, AzureDevOpsEmulator
from tests.emulators.httpserver import Fault, Record, Reply

__all__ = [
    "GUID",
    "LOCATIONS",
    "SERVICE_PRINCIPAL",
    "AzureDevOpsEmulator",
    "Fault",
    "Group",
    "Identity",
    "Organization",
    "Project",
    "Record",
    "Reply",
    "Variable",
]
