"""Pure OCI Vault rules: names, limits, lifecycle states, the version marker, deletion
windows, and what the descriptor declares. Kept free of the oci SDK: specs, planner and
their tests use these without loading it.

Facts from shared/reference/protocols.md §4 and Oracle's docs: names are letters, digits,
'-', '_' and '.', at most 255, unique per vault and case-sensitive; "the maximum allowable
size for a secret bundle is 25 KB" (the bundle is the base64 content we send, so the
largest plaintext is 3/4 of that); a deletion is scheduled 1 to 30 days ahead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from reconciler import retryafter
from reconciler.destinations.catalog import Finding, NameRule, SyncView
from reconciler.model import OWNER_TAG, OWNER_VALUE, SYNC_TAG, Lifecycle

NAMES: Final = NameRule(pattern=re.compile(r"[A-Za-z0-9_.-]"), max_length=255, noun="OCI secret name",
                        charset="letters, digits, '-', '_' and '.'")
MAX_BUNDLE_CHARS: Final = 25 * 1024
MAX_VALUE_BYTES: Final = MAX_BUNDLE_CHARS * 3 // 4
MIN_DELETION_DAYS: Final = 1
MAX_DELETION_DAYS: Final = 30
DEFAULT_DELETION_DAYS: Final = 30
#: states in which OCI refuses writes; the seed: "the sync will fail and attempt to re-sync"
TRANSITIONAL: Final = frozenset({"CREATING", "UPDATING", "SCHEDULING_DELETION", "CANCELLING_DELETION", "DELETING"})
#: gone for good (the name is free again): not listed
GONE: Final = frozenset({"DELETED"})


def lifecycle(state: str | None) -> Lifecycle:
    """Our lifecycle for a settled OCI state (transitional ones are waited out before)."""
    if state == "ACTIVE":
        return Lifecycle.ACTIVE
    if state == "PENDING_DELETION":
        return Lifecycle.PENDING_DELETION
    return Lifecycle.DISABLED  # FAILED, or a state this code does not know: hands off


def version_marker(secret_id: str, number: int | None) -> str | None:
    """The change marker: the secret's OCID and its current version number. The OCID makes a
    secret deleted and created again under the same name a different thing."""
    return None if number is None else f"{secret_id}#{number}"


def deletion_days(view: SyncView) -> int:
    days = view.sync_options.get("deletionWindowInDays", DEFAULT_DELETION_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DELETION_DAYS <= days <= MAX_DELETION_DAYS:
        return DEFAULT_DELETION_DAYS
    return days


def time_of_deletion(days: int, now: datetime | None = None) -> datetime:
    """``days`` from now; the shortest window gets a few minutes' margin so it is still a
    whole day away when the service checks it."""
    now = now or datetime.now(UTC)
    margin = timedelta(minutes=5) if days <= MIN_DELETION_DAYS else timedelta(0)
    return now + timedelta(days=days) + margin


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    return retryafter.seconds(headers)

# -- what the descriptor declares ----------------------------------------------------------

def target(view: SyncView) -> tuple[str, ...]:
    """One vault: syncs on the same vault OCID write the same place."""
    return (str(view.destination_config.get("vaultOcid", "")),)


def describe(view: SyncView) -> str:
    return f"OCI vault {view.destination_config.get('vaultOcid')}"


def properties(view: SyncView, _metadata: Mapping[str, str]) -> dict[str, str]:
    """Our ownership marks, as freeform tags; tags others set are kept, never listed here."""
    return {f"tag:{OWNER_TAG}": OWNER_VALUE, f"tag:{SYNC_TAG}": view.sync}


def spec_findings(data: Mapping[str, Any]) -> list[Finding]:
    """A key schema whose literal text OCI cannot hold in a name would fail every key."""
    opts = data.get("syncOptions") if isinstance(data.get("syncOptions"), Mapping) else {}
    assert isinstance(opts, Mapping)
    ks = opts.get("keySchema")
    if not isinstance(ks, str):
        return []
    literal = re.sub(r"\{\{[^}]*\}\}", "", ks).replace("/", "")  # '/' is reported for every destination
    if literal and not NAMES.allows(literal):
        return [Finding(("syncOptions", "keySchema"),
                        f"keySchema has characters an {NAMES.noun} cannot hold (only {NAMES.charset})")]
    return []
