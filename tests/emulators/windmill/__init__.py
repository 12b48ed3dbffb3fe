"""Windmill workspace-variables emulator (HTTP or HTTPS, bearer tokens, faults, counts).
Test infrastructure: never imported by ``reconciler``."""

from tests.emulators.windmill.server import VERSION, Fault, Record, WindmillEmulator
from tests.emulators.windmill.store import DEFAULT_PER_PAGE, MAX_PER_PAGE, Store, Variable, like, seal

__all__ = [
    "DEFAULT_PER_PAGE",
    "MAX_PER_PAGE",
    "VERSION",
    "Fault",
    "Record",
    "Store",
    "Variable",
    "WindmillEmulator",
    "like",
    "seal",
]
