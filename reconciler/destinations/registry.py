"""Destination id -> implementation, imported only when a sync uses it (so only the SDKs of
destinations in use are loaded)."""

from __future__ import annotations

import importlib
from typing import Final

from reconciler.destinations.base import ConnectionInfo, Destination, Target
from reconciler.destinations.errors import ConfigError

#: destination id -> (module, class); None = known but not built yet
_IMPLEMENTATIONS: Final[dict[str, tuple[str, str] | None]] = {
    "aws-secrets-manager": ("reconciler.destinations.aws", "AwsSecretsManager"),
    "azure-key-vault": ("reconciler.destinations.azure", "AzureKeyVault"),
    "oci-vault": None,
    "azure-devops": None,
    "windmill": None,
}


def kinds() -> tuple[str, ...]:
    """Every destination id the spec format knows."""
    return tuple(_IMPLEMENTATIONS)


def build(kind: str, target: Target, connection: ConnectionInfo) -> Destination:
    """Construct the destination for ``kind``; unknown or unimplemented ids are config errors."""
    if kind not in _IMPLEMENTATIONS:
        raise ConfigError(f"unknown destination {kind!r}")
    impl = _IMPLEMENTATIONS[kind]
    if impl is None:
        raise ConfigError(f"destination {kind} is not implemented yet")
    module_name, class_name = impl
    cls = getattr(importlib.import_module(module_name), class_name)
    destination: Destination = cls(target, connection)
    return destination
