"""One sync's plan from what the engine gathered: naming, observation, import, plan, notes.

The engine does the I/O (read the source, list the destination, read the values this module
asks for); every judgement in between is made here, purely, and ends up in the Plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from reconciler.changes import Change, Plan, PlanBasis, PlanIssue
from reconciler.destinations import naming
from reconciler.destinations.catalog import Descriptor, SyncView
from reconciler.model import InventoryEntry, Lifecycle, ObservedEntry, SecretValue, SourceSecret
from reconciler.planning.importing import plan_import
from reconciler.planning.options import PlanOptions, in_scope
from reconciler.planning.planner import plan
from reconciler.planning.vouch import vouch

Fingerprint = Callable[[SecretValue], str]


def options_for(desc: Descriptor, view: SyncView, *, disable_deletion: bool = False,
                max_deletes: tuple[float, bool] | None = None, drift: str = "correct",
                source_empty: bool = False) -> PlanOptions:
    """Planner options from the destination's descriptor and the sync's policy."""
    sc = naming.scope(desc, view)
    caps = desc.capabilities
    return PlanOptions(
        sync=view.sync, destination=desc.id, key_schema=sc.schema, environment=sc.environment,
        exact_scope=sc.exact, base=sc.base, folders=sc.folders, disable_deletion=disable_deletion,
        max_deletes=max_deletes, drift=drift, source_empty=source_empty, allows_empty=caps.allows_empty,
        max_value_bytes=caps.max_value_bytes, destination_label=desc.label,
        property_names=desc.property_names, property_problems=desc.property_problems,
        unreadable_drift=None if caps.values_readable else desc.unreadable_drift,
    )


def observe(desc: Descriptor, view: SyncView, listed: Iterable[ObservedEntry], rendered: naming.Rendered,
            inventory: Mapping[str, InventoryEntry]) -> dict[str, ObservedEntry]:
    """Listed entries in the planner's spelling, with the fingerprints state vouches for."""
    spelled = naming.spell(desc, view, listed, rendered, naming.scope(desc, view))
    return {k: vouch(e, inventory.get(k)) for k, e in spelled.items()}


def reads_needed(observed: Mapping[str, ObservedEntry], options: PlanOptions, wanted: Callable[[str], bool],
                 *, force: bool = False) -> list[str]:
    """The values worth reading: wanted, in-scope, active keys state cannot vouch for (all
    wanted ones with ``force``, as an import needs them)."""
    return [k for k, e in observed.items()
            if e.lifecycle is Lifecycle.ACTIVE and in_scope(k, options) and wanted(k)
            and (force or e.fingerprint is None)]


def with_values(observed: Mapping[str, ObservedEntry], values: Mapping[str, SecretValue],
                fingerprint: Fingerprint) -> dict[str, ObservedEntry]:
    out = dict(observed)
    for key, value in values.items():
        if key in out:
            out[key] = dataclasses.replace(out[key], fingerprint=fingerprint(value))
    return out


@dataclass(frozen=True)
class SyncPlan:
    plan: Plan
    rendered: naming.Rendered


def plan_sync(
    desc: Descriptor,
    view: SyncView,
    options: PlanOptions,
    secrets: Sequence[SourceSecret],
    rendered: naming.Rendered,
    observed: Mapping[str, ObservedEntry],
    values: Mapping[str, SecretValue],
    inventory: Mapping[str, InventoryEntry],
    fingerprint: Fingerprint,
    *,
    import_priority: str | None = None,
) -> SyncPlan:
    """The plan of one sync, import merges, rendering problems and notes included.

    With ``import_priority``, in-scope destination values are mapped back to source keys
    and merged into the source first (IMPORT changes lead the plan), and the desired state
    is rendered from the merged source.
    """
    import_changes: tuple[Change, ...] = ()
    unread: list[str] = []
    if import_priority is not None:
        in_scope_values = {k: v for k, v in values.items() if in_scope(k, options)}
        importable = naming.import_keys(desc, view, in_scope_values, rendered)
        import_changes, merged = plan_import({s.key: s for s in secrets}, importable, fingerprint, import_priority)
        rendered = naming.render(desc, view, list(merged.values()), fingerprint)
        options = dataclasses.replace(options, source_empty=not merged)
        # every in-scope value was read for the import: one missing has no text (a binary
        # secret) or vanished meanwhile. It was not imported, so it is neither deleted as
        # "not in source" nor, when the destination was to win, overwritten.
        unread = sorted(k for k, e in observed.items()
                        if e.lifecycle is Lifecycle.ACTIVE and in_scope(k, options) and k not in values)
        if unread and import_priority.removeprefix("import-prioritize-") == "destination":
            kept = {k: e for k, e in rendered.entries.items() if k not in unread}
            rendered = dataclasses.replace(rendered, entries=MappingProxyType(kept))
    protected = frozenset({*(k for k, _ in rendered.problems if k is not None), *unread})
    result = plan(rendered.entries, observed, inventory, options, protected=protected)
    issues = (*(PlanIssue(m) for _, m in rendered.problems),
              *(PlanIssue("value could not be read as text (a binary secret?), so it was not imported; "
                          "left as it is", key=k) for k in unread),
              *result.issues, *_orphans(inventory, options))
    return SyncPlan(dataclasses.replace(result, changes=import_changes + result.changes, issues=issues,
                                        target=desc.describe(view), basis=basis(observed, rendered, options)),
                    rendered)


def basis(observed: Mapping[str, ObservedEntry], rendered: naming.Rendered, options: PlanOptions) -> PlanBasis:
    """What the plan rests on (see :class:`PlanBasis`): in-scope keys only, since nothing
    outside the scope can change the plan."""
    return PlanBasis(
        observed=tuple(sorted((k, o.version or "", o.lifecycle.value)
                              for k, o in observed.items() if in_scope(k, options))),
        desired=tuple(sorted((k, d.fingerprint) for k, d in rendered.entries.items())),
    )


def _orphans(inventory: Mapping[str, InventoryEntry], options: PlanOptions) -> tuple[PlanIssue, ...]:
    """Keys this sync wrote that its (changed) key schema no longer covers: never touched,
    but said once, in the plan a reviewer reads before the change lands."""
    orphans = sorted(k for k in inventory if not in_scope(k, options))
    if not orphans:
        return ()
    shown = ", ".join(orphans[:5]) + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
    return (PlanIssue(
        f"{len(orphans)} key(s) this sync wrote are outside its key schema now and are left in place: "
        f"{shown} (remove them with `reconciler remove` before changing the schema, or by hand)",
        severity="warning",
    ),)
