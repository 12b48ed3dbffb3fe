"""The per-key comparison: what a present destination key needs, and why.

Each difference is split by cause. A *source* difference means the desired state moved
since our last write (or we never wrote the key); a *drift* difference means the desired
state is what we last wrote and the destination moved away from it. ``drift: report``
applies the first kind and only reports the second, like Terraform's refresh-only plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler.changes import Action, Change
from reconciler.model import DesiredEntry, InventoryEntry, ObservedEntry

VALUE_CHANGED = "value changed"
VALUE_UNKNOWN = "value unknown"
OUTSIDE = "changed outside reconciler"


@dataclass(frozen=True)
class Diff:
    """What one present key needs. Empty (``not diff``) means in sync."""

    #: the value must be written, and why (None = value in sync)
    value_reason: str | None = None
    value_drift: bool = False
    set_source: Mapping[str, str] = field(default_factory=dict)
    set_drift: Mapping[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.value_reason or self.set_source or self.set_drift or self.unset)

    @property
    def has_source_part(self) -> bool:
        return bool((self.value_reason and not self.value_drift) or self.set_source or self.unset)

    @property
    def has_drift_part(self) -> bool:
        return self.value_drift or bool(self.set_drift)


def diff_present(d: DesiredEntry, o: ObservedEntry, inv: InventoryEntry | None,
                 unreadable: str | None = None) -> Diff:
    """Compare a desired entry with the key as observed, using the inventory as baseline.

    - An unknown observed fingerprint counts as different ("value unknown"): we cannot vouch
      for it, so it is written.
    - Value drift needs evidence: the inventory fingerprint equals the desired one (the source
      did not move) and the observed value is known to differ, or is unknown while the
      destination's version marker moved since our write. Without evidence it is not drift.
    - ``unreadable`` (a destination whose values cannot be read back) is why such drift is
      rewritten, said in the reason.
    - A property is drift when the inventory shows we already set that exact value.
    - Only properties we set (in inventory), no longer desired and still present are unset:
      never remove a property someone else put there.
    """
    value_reason: str | None = None
    value_drift = False
    baseline = inv is not None and inv.fingerprint is not None and inv.fingerprint == d.fingerprint
    if o.fingerprint is None:
        moved = inv is not None and None not in (o.version, inv.version) and o.version != inv.version
        value_drift = baseline and moved
        value_reason = OUTSIDE if value_drift else VALUE_UNKNOWN
        if value_drift and unreadable:  # a destination that never shows values back
            value_reason = f"values cannot be compared: {unreadable}"
    elif o.fingerprint != d.fingerprint:
        value_drift = baseline
        value_reason = OUTSIDE if value_drift else VALUE_CHANGED

    set_source: dict[str, str] = {}
    set_drift: dict[str, str] = {}
    for name in sorted(d.properties):
        want = d.properties[name]
        if o.properties.get(name) == want:
            continue
        if inv is not None and inv.properties.get(name) == want:
            set_drift[name] = want
        else:
            set_source[name] = want
    unset: tuple[str, ...] = ()
    if inv is not None:
        unset = tuple(sorted(p for p in inv.properties if p not in d.properties and p in o.properties))
    return Diff(value_reason, value_drift, set_source, set_drift, unset)


def describe_properties(names: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """``tag:a``, ``tag:b``, ``kms`` -> "tags and KMS key" (names only, never values);
    ``labels`` is how the destination names its properties."""
    kinds: list[str] = []
    for name in sorted(names):
        kind = "tags" if name.startswith("tag:") else (labels or {}).get(name, name)
        if kind not in kinds:
            kinds.append(kind)
    if len(kinds) <= 1:
        return "".join(kinds)
    return ", ".join(kinds[:-1]) + " and " + kinds[-1]


def update(
    key: str,
    d: DesiredEntry,
    *,
    value_reason: str | None,
    set_properties: Mapping[str, str],
    unset: tuple[str, ...] = (),
    drift: bool,
    unowned: bool,
    props_outside: bool = False,
    labels: Mapping[str, str] | None = None,
) -> Change | None:
    """One UPDATE for the given parts, or None when there is nothing to do.

    The desired value and fingerprint ride along even when only properties change: the
    destination decides whether it needs the value (AWS UpdateSecret with a new KMS key),
    ``value_changed`` says whether a new version is wanted, and the fingerprint is what the
    inventory records.
    """
    if not (value_reason or set_properties or unset):
        return None
    parts: list[str] = []
    if value_reason:
        parts.append(value_reason)
    props = describe_properties([*set_properties, *unset], labels)
    if props:
        outside = props_outside and value_reason != OUTSIDE
        parts.append(f"{props} changed" + (" outside reconciler" if outside else ""))
    return Change(
        Action.UPDATE,
        key,
        reason=", ".join(parts),
        value=d.value,
        fingerprint=d.fingerprint,
        value_changed=value_reason is not None,
        set_properties=MappingProxyType(dict(set_properties)),
        unset_properties=unset,
        unowned=unowned,
        drift=drift,
    )


def split_update(
    key: str, d: DesiredEntry, diff: Diff, *, report: bool, unowned: bool, labels: Mapping[str, str] | None = None
) -> tuple[Change | None, Change | None]:
    """(change to apply, drift to report only). With ``report`` the drift parts are withheld;
    otherwise one change corrects everything and is flagged ``drift`` when it undoes an edit."""
    if not report:
        whole = update(
            key,
            d,
            value_reason=diff.value_reason,
            set_properties={**diff.set_source, **diff.set_drift},
            unset=diff.unset,
            drift=diff.has_drift_part,
            unowned=unowned,
            props_outside=bool(diff.set_drift) and not (diff.set_source or diff.unset),
            labels=labels,
        )
        return whole, None
    applied = update(
        key,
        d,
        value_reason=None if diff.value_drift else diff.value_reason,
        set_properties=diff.set_source,
        unset=diff.unset,
        drift=False,
        unowned=unowned,
        labels=labels,
    )
    withheld = update(
        key,
        d,
        value_reason=diff.value_reason if diff.value_drift else None,
        set_properties=diff.set_drift,
        drift=True,
        unowned=unowned,
        props_outside=True,
        labels=labels,
    )
    return applied, withheld
