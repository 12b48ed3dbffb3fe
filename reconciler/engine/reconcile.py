"""One reconcile of one sync: read source -> observe destination -> plan -> apply -> record.

The engine decides which destination values are worth reading (only keys whose version
moved since state recorded them), builds the pure planner's inputs, and records every
write as it lands so an interrupted apply never loses track of what it wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.destinations.base import DesiredSpec, Destination
from reconciler.destinations.errors import DestinationError
from reconciler.engine.connect import ConnectError, open_destination, open_source
from reconciler.engine.outcome import Outcome, record_status
from reconciler.logging import current_run_id, get_logger
from reconciler.model import (
    Action,
    Change,
    ChangeResult,
    DesiredEntry,
    InventoryEntry,
    Lifecycle,
    ObservedEntry,
    Plan,
    PlanIssue,
    SecretValue,
    SourceSecret,
)
from reconciler.planning.planner import PlanOptions, in_scope, plan, plan_import, plan_remove
from reconciler.planning.vouch import vouch
from reconciler.sources.base import Source
from reconciler.sources.catalog import SourceCatalog
from reconciler.sources.errors import SourceError
from reconciler.specs.model import DESTINATION_LABELS, Connection, SecretSync, SpecSet
from reconciler.state.store import StateStore


@dataclass(frozen=True)
class _Planned:
    plan: Plan
    desired: dict[str, DesiredEntry]
    observed: dict[str, ObservedEntry]


@dataclass
class _Context:
    sync: SecretSync
    source: Source
    destination: Destination
    inventory: dict[str, InventoryEntry]
    target_id: str
    first_sync: bool


class Reconciler:
    """Runs plan/apply/import/remove for syncs of one SpecSet against one state store."""

    def __init__(self, specs: SpecSet, state: StateStore, *, sources: SourceCatalog | None = None) -> None:
        self.specs = specs
        self.state = state
        self.sources = sources
        self.fp = state.fingerprinter

    # -- shared preparation ------------------------------------------------------------------
    def _connection(self, name: str) -> Connection:
        conn = self.specs.connections.get(name)
        if conn is None:
            raise ConnectError(f"connection {name!r} is not defined (or its spec is invalid)")
        return conn

    def _target_id(self, sync: SecretSync) -> str:
        conn = self._connection(sync.connection)
        ident = {
            "destination": sync.destination,
            "connection": {k: v for k, v in conn.settings.items() if isinstance(v, str | int | bool)},
            "config": dict(sync.destination_config),
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _context(self, sync: SecretSync) -> _Context:
        source = open_source(self._connection(sync.source), self.sources)
        destination = open_destination(sync, self._connection(sync.connection))
        status = self.state.status(sync.name)
        target_id = self._target_id(sync)
        inventory = self.state.inventory(sync.name) if status.target in (None, target_id) else {}
        return _Context(sync, source, destination, inventory, target_id, status.lastSyncedAt is None)

    def _options(self, ctx: _Context, *, source_empty: bool) -> PlanOptions:
        scope = ctx.destination.scope()
        caps = ctx.destination.capabilities
        return PlanOptions(
            sync=ctx.sync.name,
            destination=ctx.sync.destination,
            key_schema=scope.key_schema,
            environment=scope.environment,
            exact_scope=scope.exact,
            disable_deletion=ctx.sync.disable_secret_deletion,
            max_deletes=ctx.sync.reconcile.max_deletes,
            drift=ctx.sync.reconcile.drift,
            source_empty=source_empty,
            allows_empty=caps.allows_empty,
            max_value_bytes=caps.max_value_bytes,
            destination_label=DESTINATION_LABELS.get(ctx.sync.destination, ctx.sync.destination),
        )

    def _desired(self, ctx: _Context, secrets: Sequence[SourceSecret]) -> tuple[dict[str, DesiredEntry], list[str]]:
        specs, errors = ctx.destination.desired(secrets)
        return {s.key: self._entry(s) for s in specs}, errors

    def _entry(self, s: DesiredSpec) -> DesiredEntry:
        return DesiredEntry(s.key, s.value, self.fp(s.value), s.properties, s.source_keys)

    def _observe(
        self, ctx: _Context, options: PlanOptions, wanted: Callable[[str], bool], *, force_read: bool = False
    ) -> tuple[dict[str, ObservedEntry], dict[str, SecretValue]]:
        """List the destination; read values only for wanted keys whose value state cannot
        vouch for (version moved since our last write), or all wanted ones with force_read."""
        listed = {e.key: e for e in ctx.destination.list_entries()}
        to_read: list[str] = []
        observed: dict[str, ObservedEntry] = {}
        for key, entry in listed.items():
            entry = vouch(entry, ctx.inventory.get(key))
            observed[key] = entry
            if (
                entry.lifecycle is Lifecycle.ACTIVE
                and in_scope(key, options)
                and wanted(key)
                and (force_read or entry.fingerprint is None)
            ):
                to_read.append(key)
        values = ctx.destination.read_values(to_read) if to_read else {}
        for key, value in values.items():
            observed[key] = dataclasses.replace(observed[key], fingerprint=self.fp(value))
        return observed, values

    # -- plan ----------------------------------------------------------------------------------
    def _plan(self, ctx: _Context, *, import_priority: str | None = None) -> _Planned:
        sync = ctx.sync
        secrets = ctx.source.read(sync.folder)
        desired, render_errors = self._desired(ctx, secrets)
        options = self._options(ctx, source_empty=not secrets)
        if import_priority is None and ctx.first_sync and sync.initial_sync_behavior != "overwrite-destination":
            import_priority = sync.initial_sync_behavior.removeprefix("import-prioritize-")
        importing = import_priority is not None
        observed, values = self._observe(ctx, options, lambda k: importing or k in desired, force_read=importing)
        import_changes: tuple[Change, ...] = ()
        if importing and import_priority is not None:
            in_scope_values = {k: v for k, v in values.items() if in_scope(k, options)}
            importable = ctx.destination.importable(in_scope_values)
            source_map = {s.key: s for s in secrets}
            import_changes, merged = plan_import(source_map, importable, self.fp, import_priority)
            desired, render_errors = self._desired(ctx, list(merged.values()))
            options = dataclasses.replace(options, source_empty=not merged)
        result = plan(desired, observed, ctx.inventory, options)
        issues = tuple(PlanIssue(m) for m in render_errors) + result.issues + self._orphans(ctx, options)
        result = dataclasses.replace(result, changes=import_changes + result.changes, issues=issues)
        return _Planned(result, desired, observed)

    @staticmethod
    def _orphans(ctx: _Context, options: PlanOptions) -> tuple[PlanIssue, ...]:
        """Keys this sync wrote that its (changed) key schema no longer covers: never touched,
        but said once, in the plan a reviewer reads before the change lands."""
        orphans = sorted(k for k in ctx.inventory if not in_scope(k, options))
        if not orphans:
            return ()
        shown = ", ".join(orphans[:5]) + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
        return (PlanIssue(
            f"{len(orphans)} key(s) this sync wrote are outside its key schema now and are left in place: "
            f"{shown} (remove them with `reconciler remove` before changing the schema, or by hand)",
            severity="warning",
        ),)

    def _run(self, sync: SecretSync, job: str | None, body: Callable[[_Context, Outcome, Any], None]) -> Outcome:
        """Open source and destination, run ``body``, turn known failures into the outcome's
        error, and (for jobs other than a plan) record the seeds' status fields."""
        out = Outcome(sync.name, sync.destination)
        run_id = current_run_id()
        log = get_logger(sync=sync.name, destination=sync.destination, run_id=run_id)
        started = time.monotonic()
        try:
            ctx = self._context(sync)
            try:
                body(ctx, out, log)
            finally:
                ctx.destination.close()
                ctx.source.close()
        except (SourceError, DestinationError, ConnectError) as e:
            out.error = str(e)
            out.retry_after = getattr(e, "retry_after", None)
        # the longest wait any throttled step asked for: a retry sooner would only be refused
        waits = [w for w in (out.retry_after, *(r.retry_after for r in out.results)) if w is not None]
        out.retry_after = max(waits, default=None)
        if job is not None:
            record_status(self.state, sync, self._safe_target(sync), out, job, started, log, run_id)
        return out

    def plan_sync(self, sync: SecretSync) -> Outcome:
        def body(ctx: _Context, out: Outcome, _log: Any) -> None:
            out.plan = self._plan(ctx).plan

        return self._run(sync, None, body)

    # -- apply ---------------------------------------------------------------------------------
    def apply_sync(self, sync: SecretSync, *, import_priority: str | None = None, job: str = "sync") -> Outcome:
        def body(ctx: _Context, out: Outcome, log: Any) -> None:
            planned = self._plan(ctx, import_priority=import_priority)
            plan_ = out.plan = planned.plan
            (log.info if plan_.changes else log.debug)(
                "plan.computed", create=plan_.count(Action.CREATE), update=plan_.count(Action.UPDATE),
                delete=plan_.count(Action.DELETE), restore=plan_.count(Action.RESTORE),
                imports=plan_.count(Action.IMPORT), unchanged=plan_.unchanged)
            for d in plan_.drift:
                log.warning("drift.detected", key=d.key, reason=d.reason)
            self._execute(ctx, out, planned, log)

        return self._run(sync, job, body)

    def _execute(self, ctx: _Context, out: Outcome, planned: _Planned, log: Any) -> None:
        assert out.plan is not None
        sync = ctx.sync
        imports = [c for c in out.plan.changes if c.action is Action.IMPORT]
        if imports:
            # all-or-nothing into the source before the destination sees anything
            ctx.source.write(sync.folder, {c.key: c.value for c in imports if c.value is not None})
            out.results.extend(ChangeResult(c, True) for c in imports)
            log.info("import.applied", keys=len(imports))
        changes = [c for c in out.plan.changes if c.action is not Action.IMPORT]
        desired, observed = planned.desired, planned.observed
        if ctx.target_id and self.state.status(sync.name).target not in (None, ctx.target_id):
            self.state.drop_inventory(sync.name)

        def on_result(r: ChangeResult) -> None:
            out.results.append(r)
            c = r.change
            if not r.ok:
                log.error("change.failed", key=c.key, action=c.action.value, error=r.error)
                if r.version is not None and c.value_changed and c.fingerprint is not None:
                    # the value landed but a later step (tags) failed: remember the value, keep
                    # the old properties so the next plan retries the tags
                    old = ctx.inventory.get(c.key)
                    props = old.properties if old else {}
                    self.state.put_inventory(
                        sync.name, {c.key: InventoryEntry(c.key, c.fingerprint, r.version, props)})
                return
            log.info("change.applied", key=c.key, action=c.action.value, reason=c.reason)
            if c.action is Action.DELETE:
                self.state.drop_inventory(sync.name, [c.key])
                return
            if c.action is Action.RESTORE:
                return  # a restore writes no value: what state knew of the key still holds
            d = desired.get(c.key)
            props = d.properties if d else r.properties
            fingerprint, version = c.fingerprint, r.version
            if not c.value_changed:
                # properties only: the value is what it was; keep withheld value drift visible
                prev = observed.get(c.key)
                old = ctx.inventory.get(c.key)
                if prev is not None and prev.fingerprint == c.fingerprint:
                    version = version or prev.version
                elif old is not None:
                    fingerprint, version = old.fingerprint, old.version
                else:
                    fingerprint, version = None, None
            self.state.put_inventory(sync.name, {c.key: InventoryEntry(c.key, fingerprint, version, props)})

        if changes:
            ctx.destination.apply(changes, on_result)
        self._adopt_unchanged(ctx, out, planned)

    def _adopt_unchanged(self, ctx: _Context, out: Outcome, planned: _Planned) -> None:
        """Record in-sync keys so the next run trusts their version instead of re-reading."""
        assert out.plan is not None
        desired, observed = planned.desired, planned.observed
        touched = {c.key for c in out.plan.changes} | {c.key for c in out.plan.drift}
        fresh: dict[str, InventoryEntry] = {}
        options = self._options(ctx, source_empty=False)
        for key, d in desired.items():
            o = observed.get(key)
            if key in touched or o is None or o.lifecycle is not Lifecycle.ACTIVE:
                continue
            if not in_scope(key, options):
                continue
            if o.fingerprint != d.fingerprint or o.version is None:
                continue
            inv = ctx.inventory.get(key)
            entry = InventoryEntry(key, d.fingerprint, o.version, d.properties)
            if inv != entry:
                fresh[key] = entry
        # gone from source and listing alike (out-of-scope keys are warned about once, in the plan
        # that changes the schema: the pull request is where a reviewer needs to see it)
        stale = [k for k in ctx.inventory if k not in desired and k not in observed]
        if fresh:
            self.state.put_inventory(ctx.sync.name, fresh)
        if stale:
            self.state.drop_inventory(ctx.sync.name, stale)

    def _safe_target(self, sync: SecretSync) -> str | None:
        try:
            return self._target_id(sync)
        except ConnectError:
            return None

    # -- import / remove -----------------------------------------------------------------------
    def import_sync(self, sync: SecretSync, priority: str) -> Outcome:
        """The seeds' "import secrets" action: destination -> source, then a normal sync."""
        return self.apply_sync(sync, import_priority=priority, job="import")

    def remove_sync(self, sync: SecretSync) -> Outcome:
        """The seeds' "remove secrets" action: delete what this sync put at the destination."""

        def body(ctx: _Context, out: Outcome, log: Any) -> None:
            secrets = ctx.source.read(sync.folder)
            desired, _ = self._desired(ctx, secrets)
            options = self._options(ctx, source_empty=not secrets)
            observed, _ = self._observe(ctx, options, lambda _k: False)
            out.plan = plan_remove(desired, observed, options, ctx.inventory)

            def on_result(r: ChangeResult) -> None:
                out.results.append(r)
                if r.ok:
                    self.state.drop_inventory(sync.name, [r.change.key])
                    log.info("change.applied", key=r.change.key, action="delete", reason="remove")
                else:
                    log.error("change.failed", key=r.change.key, action="delete", error=r.error)

            if out.plan.changes:
                ctx.destination.apply(list(out.plan.changes), on_result)

        return self._run(sync, "remove", body)
