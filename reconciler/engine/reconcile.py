"""One reconcile of one sync: read source -> list destination -> plan -> apply -> record.

The engine does the I/O and nothing else: it reads the source, lists the destination, reads
the values :mod:`reconciler.planning.sync` says are worth reading, and hands the plan's
changes to the destination session. Every write is recorded as it lands (a pure function of
inventory and result), so an interrupted apply never loses track of what it wrote.
Destinations and sources come from injected factories: tests drive the engine with
in-memory ones, no patching.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import deadline
from reconciler.changes import Action, ChangeResult, Plan
from reconciler.destinations import catalog as catalog_mod
from reconciler.destinations import naming
from reconciler.destinations.catalog import Catalog, Descriptor, SyncView
from reconciler.destinations.contract import NOT_STARTED, Session, stopping
from reconciler.engine.connect import connection_info, open_source
from reconciler.engine.outcome import Outcome, Refused, record_status
from reconciler.engine.sharing import Listings, Member
from reconciler.errors import ConfigError, ReconcilerError, StateError
from reconciler.logging import current_run_id, get_logger
from reconciler.model import InventoryEntry, ObservedEntry
from reconciler.planning import inventory as inv_rules
from reconciler.planning import sync as planning
from reconciler.planning.options import PlanOptions
from reconciler.planning.planner import plan_remove
from reconciler.sources.base import Source
from reconciler.specs.model import Connection, SecretSync, SpecSet
from reconciler.state.backend import Lease, StateBackend

SourceFactory = Callable[[Connection], Source]
#: a last look at the plan before anything is written: a reason to refuse it, or None
Expect = Callable[[Plan], str | None]


@dataclass
class _Context:
    sync: SecretSync
    descriptor: Descriptor
    view: SyncView
    source: Source
    session: Session
    inventory: dict[str, InventoryEntry]
    target_id: str
    first_sync: bool
    #: the sync's lock, for a run that writes: no write starts once it is set
    lease: Lease | None = None


def target_id(specs: SpecSet, destinations: Catalog, sync: SecretSync) -> str:
    """A short digest of the catalog's target identity: what the inventory belongs to, and
    what syncs share a listing on."""
    view = sync.view(specs.connections.get(sync.connection))
    ident = destinations[sync.destination].identity(view)
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]


def members(specs: SpecSet, destinations: Catalog, syncs: Iterable[SecretSync]) -> list[Member]:
    """(sync, target id, scope) of each sync, for :meth:`Listings.share`."""
    out: list[Member] = []
    for s in syncs:
        desc = destinations.get(s.destination)
        if desc is not None:
            view = s.view(specs.connections.get(s.connection))
            out.append((s.name, target_id(specs, destinations, s), naming.scope(desc, view)))
    return out


def _agrees(observed: Mapping[str, ObservedEntry], inventory: Mapping[str, InventoryEntry], sync: str) -> bool:
    """A shared listing matches what this sync recorded writing: each recorded key is listed
    at its recorded version, and each key listed as this sync's is recorded. Otherwise the
    listing may predate another process's run of the sync (or the destination changed)."""
    for key, inv in inventory.items():
        seen = observed.get(key)
        if seen is None or (inv.version is not None and seen.version is not None and seen.version != inv.version):
            return False
    return all(key in inventory for key, e in observed.items() if e.owner == sync)


class Reconciler:
    """Runs plan/apply/import/remove for syncs of one SpecSet against one state store."""

    def __init__(self, specs: SpecSet, state: StateBackend, *, destinations: Catalog | None = None,
                 sources: SourceFactory = open_source, stop: threading.Event | None = None,
                 lock_wait: float = 10.0, listings: Listings | None = None) -> None:
        self.specs = specs
        self.state = state
        self.fp = state.fingerprinter
        self.destinations = destinations or catalog_mod.default()
        self._open_source = sources
        #: once set, no new write starts (in-flight ones finish and are recorded)
        self.stop = stop or threading.Event()
        self._lock_wait = lock_wait
        self.listings = listings or Listings()

    @contextlib.contextmanager
    def sharing(self, syncs: Iterable[SecretSync]) -> Iterator[None]:
        """Syncs run inside share one listing per destination target (see engine/sharing.py)."""
        shared = self.listings.share(members(self.specs, self.destinations, syncs))
        try:
            yield
        finally:
            self.listings.forget(shared)

    # -- shared preparation ------------------------------------------------------------------
    def _connection(self, name: str) -> Connection:
        conn = self.specs.connections.get(name)
        if conn is None:
            raise ConfigError(f"connection {name!r} is not defined (or its spec is invalid)")
        return conn

    def target_id(self, sync: SecretSync) -> str:
        return target_id(self.specs, self.destinations, sync)

    def _context(self, sync: SecretSync) -> _Context:
        desc = self.destinations[sync.destination]
        conn = self._connection(sync.connection)
        view = sync.view(conn)
        source = self._open_source(self._connection(sync.source))
        try:
            session = desc.open(view, connection_info(conn))
        except BaseException:
            source.close()
            raise
        status = self.state.status(sync.name)
        target_id = self.target_id(sync)
        inventory = self.state.inventory(sync.name) if status.target in (None, target_id) else {}
        return _Context(sync, desc, view, source, session, inventory, target_id, status.lastSyncedAt is None)

    def _options(self, ctx: _Context, *, source_empty: bool) -> PlanOptions:
        rec = ctx.sync.reconcile
        return planning.options_for(ctx.descriptor, ctx.view, disable_deletion=ctx.sync.disable_secret_deletion,
                                    max_deletes=rec.max_deletes, drift=rec.drift, source_empty=source_empty)

    # -- plan ----------------------------------------------------------------------------------
    def _plan(self, ctx: _Context, *, import_priority: str | None = None) -> planning.SyncPlan:
        sync, desc = ctx.sync, ctx.descriptor
        secrets = ctx.source.read(sync.folder)
        rendered = naming.render(desc, ctx.view, secrets, self.fp)
        options = self._options(ctx, source_empty=not secrets)
        if import_priority is None and ctx.first_sync and sync.initial_sync_behavior != "overwrite-destination":
            import_priority = sync.initial_sync_behavior.removeprefix("import-prioritize-")
        importing = import_priority is not None
        scope = naming.scope(desc, ctx.view, wanted=rendered.entries)
        def agrees(entries: list[ObservedEntry]) -> bool:
            return _agrees(planning.observe(desc, ctx.view, entries, rendered, ctx.inventory), ctx.inventory,
                           sync.name)

        listed = self.listings.list(sync.name, ctx.target_id, ctx.session, scope, desc.names.fold, agrees)
        observed = planning.observe(desc, ctx.view, listed, rendered, ctx.inventory)
        wanted = planning.reads_needed(observed, options, lambda k: importing or k in rendered.entries,
                                       force=importing)
        values = ctx.session.read(wanted) if wanted else {}
        observed = planning.with_values(observed, values, self.fp)
        return planning.plan_sync(desc, ctx.view, options, secrets, rendered, observed, values, ctx.inventory,
                                  self.fp, import_priority=import_priority)

    def _run(self, sync: SecretSync, job: str | None, body: Callable[[_Context, Outcome, Any], None]) -> Outcome:
        """Open source and destination, run ``body``, turn known failures into the outcome's
        error, and (for jobs other than a plan) record the seeds' status fields."""
        out = Outcome(sync.name, sync.destination)
        run_id = current_run_id()
        log = get_logger(sync=sync.name, destination=sync.destination, run_id=run_id)
        started = time.monotonic()
        lease: Lease | None = None
        try:
            with contextlib.ExitStack() as held:
                if job is not None:  # a run that writes: one at a time per sync, across processes
                    try:
                        lease = held.enter_context(self.state.hold(sync.name, wait=self._lock_wait))
                    except ReconcilerError as e:  # the holder's run is the one to record, not this one
                        raise Refused(str(e), retry_after=e.retry_after) from None
                held.enter_context(deadline.run(sync.reconcile.timeout_seconds, stop=self.stop))
                ctx = self._context(sync)
                ctx.lease = lease
                try:
                    body(ctx, out, log)
                finally:
                    ctx.session.close()
                    ctx.source.close()
        except ReconcilerError as e:
            out.error = str(e)
            out.retry_after = e.retry_after
            if isinstance(e, Refused):
                return out  # nothing was attempted: nothing to record
        except Exception as e:  # a bug, or a library's: this sync fails, the command's others run
            log.error("sync.crashed", error_type=type(e).__name__)  # the type only: a message may quote a value
            out.error = f"internal error ({type(e).__name__})"
        if lease is not None and lease.lost is not None:  # whatever else failed after, this is why
            out.error = f"lost the lock on sync {sync.name}: {lease.lost}"
            log.error("sync.lock_lost", message=out.error)
        # the longest wait any throttled step asked for: a retry sooner would only be refused
        waits = [w for w in (out.retry_after, *(r.retry_after for r in out.results)) if w is not None]
        out.retry_after = max(waits, default=None)
        if job is not None:
            try:
                record_status(self.state, sync, self._safe_target(sync), out, job, started, log, run_id)
            except ReconcilerError as e:  # the state is away: the run's own failure stays the news
                log.error("status.not_recorded", error=str(e))
                out.error = out.error or str(e)
        return out

    def plan_sync(self, sync: SecretSync) -> Outcome:
        def body(ctx: _Context, out: Outcome, _log: Any) -> None:
            out.plan = self._plan(ctx).plan

        return self._run(sync, None, body)

    # -- apply ---------------------------------------------------------------------------------
    def apply_sync(self, sync: SecretSync, *, import_priority: str | None = None, job: str = "sync",
                   expect: Expect | None = None) -> Outcome:
        """Plan and apply; ``expect`` may refuse the fresh plan (a saved plan it must equal)."""

        def body(ctx: _Context, out: Outcome, log: Any) -> None:
            plan_ = out.plan = self._plan(ctx, import_priority=import_priority).plan
            refusal = expect(plan_) if expect is not None else None
            if refusal is not None:
                raise Refused(refusal)
            (log.info if plan_.changes else log.debug)(
                "plan.computed", create=plan_.count(Action.CREATE), update=plan_.count(Action.UPDATE),
                delete=plan_.count(Action.DELETE), restore=plan_.count(Action.RESTORE),
                imports=plan_.count(Action.IMPORT), unchanged=plan_.unchanged)
            for d in plan_.drift:
                log.warning("drift.detected", key=d.key, reason=d.reason)
            self._execute(ctx, out, log)

        return self._run(sync, job, body)

    def _record(self, ctx: _Context, update: inv_rules.Update) -> None:
        put, drop = update
        if put:
            self.state.put_inventory(ctx.sync.name, put)
        if drop:
            self.state.drop_inventory(ctx.sync.name, drop)

    def _execute(self, ctx: _Context, out: Outcome, log: Any) -> None:
        plan_ = out.plan
        assert plan_ is not None
        sync = ctx.sync
        imports = [c for c in plan_.changes if c.action is Action.IMPORT]
        if imports:
            # all-or-nothing into the source before the destination sees anything
            ctx.source.write(sync.folder, {c.key: c.value for c in imports if c.value is not None})
            out.results.extend(ChangeResult(c, True) for c in imports)
            log.info("import.applied", keys=len(imports))
        changes = [c for c in plan_.changes if c.action is not Action.IMPORT]
        if ctx.target_id and self.state.status(sync.name).target not in (None, ctx.target_id):
            self.state.drop_inventory(sync.name)

        def on_result(r: ChangeResult) -> None:
            out.results.append(r)
            c = r.change
            if r.ok:
                log.info("change.applied", key=c.key, action=c.action.value, reason=c.reason)
            elif r.error != NOT_STARTED:  # held back by an interrupt: counted in sync.failed, not an error
                log.error("change.failed", key=c.key, action=c.action.value, error=r.error)
            self._record(ctx, inv_rules.after_result(ctx.inventory, r))

        if changes:
            with stopping(self.stop, ctx.lease):
                ctx.session.apply(changes, on_result)
        if ctx.lease is not None and ctx.lease.is_set():
            raise StateError("the lock was lost")  # recorded what landed; the next holder plans the rest
        self._record(ctx, inv_rules.after_plan(plan_))

    def _safe_target(self, sync: SecretSync) -> str | None:
        try:
            return self.target_id(sync)
        except ReconcilerError:
            return None

    # -- import / remove -----------------------------------------------------------------------
    def import_sync(self, sync: SecretSync, priority: str) -> Outcome:
        """The seeds' "import secrets" action: destination -> source, then a normal sync.
        A destination whose values cannot be read back has nothing to import: refused before
        anything runs (the sync that follows an import would otherwise delete what the user
        meant to import)."""
        desc = self.destinations.get(sync.destination)
        if desc is not None and not desc.capabilities.can_import:
            return Outcome(sync.name, sync.destination,
                           error=f"{desc.label} cannot import: its values cannot be read back; nothing was done")
        return self.apply_sync(sync, import_priority=priority, job="import")

    def _plan_remove(self, ctx: _Context) -> Plan:
        desc = ctx.descriptor
        secrets = ctx.source.read(ctx.sync.folder)
        rendered = naming.render(desc, ctx.view, secrets, self.fp)
        options = self._options(ctx, source_empty=not secrets)
        listed = ctx.session.list(naming.scope(desc, ctx.view))
        observed = planning.observe(desc, ctx.view, listed, rendered, ctx.inventory)
        return dataclasses.replace(plan_remove(rendered.entries, observed, options, ctx.inventory),
                                   target=desc.describe(ctx.view))

    def plan_remove_sync(self, sync: SecretSync) -> Outcome:
        """What :meth:`remove_sync` would delete, for a person to confirm; writes nothing."""

        def body(ctx: _Context, out: Outcome, _log: Any) -> None:
            out.plan = self._plan_remove(ctx)

        return self._run(sync, None, body)

    def remove_sync(self, sync: SecretSync, *, expect: Expect | None = None) -> Outcome:
        """The seeds' "remove secrets" action: delete what this sync put at the destination.
        ``expect`` may refuse the fresh plan (it must delete what the person confirmed)."""

        def body(ctx: _Context, out: Outcome, log: Any) -> None:
            out.plan = self._plan_remove(ctx)
            refusal = expect(out.plan) if expect is not None else None
            if refusal is not None:
                raise Refused(refusal)

            def on_result(r: ChangeResult) -> None:
                out.results.append(r)
                if r.ok:
                    log.info("change.applied", key=r.change.key, action="delete", reason="remove")
                else:
                    log.error("change.failed", key=r.change.key, action="delete", error=r.error)
                self._record(ctx, inv_rules.after_result(ctx.inventory, r))

            if out.plan.changes:
                with stopping(self.stop, ctx.lease):
                    ctx.session.apply(list(out.plan.changes), on_result)

        return self._run(sync, "remove", body)
