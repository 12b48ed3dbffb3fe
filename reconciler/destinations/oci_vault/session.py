"""OCI Vault destination.

Cost of a no-change reconcile with warm state: ⌈T/100⌉ ListSecrets pages (T = secrets in the
vault, every page followed) plus one GetSecret per in-scope secret the sync wants or
reconciler manages — summaries carry no version number, and GetSecret's
``currentVersionNumber`` (metadata, never the value) is the change marker — and no
GetSecretBundle and no write. A value is read only for a key whose marker
moved since state recorded it. Upstream reads the first page only, then the value of every
ACTIVE secret in the vault, its own or not.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextvars
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import errors
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope, apply_by_key
from reconciler.destinations.oci_vault import client, rules
from reconciler.model import OWNER_TAG, OWNER_VALUE, SYNC_TAG, ObservedEntry, SecretValue, frozen_map

PAGE_SIZE = 100
WORKERS = 8
#: how long an in-scope secret in a transitional state is waited for before the sync fails
#: (retryably); our own writes settle within seconds
SETTLE_WAIT = 10.0
#: cancelling a deletion "may take up to a minute" (the seed)
RESTORE_WAIT = 60.0
POLL = 1.0
#: names an unlisted session looks up one by one; more than this and it lists the vault
NAME_LOOKUPS = 3
SCHEDULED_MSG = "a secret of this name exists (scheduled for deletion, or created since the plan); re-plan"


@dataclass
class _Known:
    """What the last listing or answer said about one secret."""

    id: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)
    version: int | None = None


class OciVault:
    """A session on one OCI vault for one sync."""

    def __init__(self, view: SyncView, connection: ConnectionInfo) -> None:
        cfg = view.destination_config
        self._compartment = str(cfg.get("compartmentOcid") or "")
        self._vault = str(cfg.get("vaultOcid") or "")
        self._key = str(cfg.get("keyOcid") or "")
        if not (self._compartment and self._vault and self._key):
            raise errors.ConfigError("destinationConfig needs compartmentOcid, vaultOcid and keyOcid")
        self._sync = view.sync
        self._days = rules.deletion_days(view)
        workers = connection.settings.get("maxConcurrency", WORKERS)
        self._workers = workers if isinstance(workers, int) and not isinstance(workers, bool) and workers > 0 \
            else WORKERS
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        self._clients = client.make_clients(connection)

    # -- observation -----------------------------------------------------------------------
    def _pages(self) -> builtins.list[Any]:
        """Every ListSecrets page, by hand: oci.pagination would retry each page on its own
        default strategy, whatever the client says. Oldest first, so a secret created while
        we page lands on the last page instead of shifting the others."""
        vc = self._clients.vaults
        items: builtins.list[Any] = []
        page: str | None = None
        while True:
            kw: dict[str, Any] = {"vault_id": self._vault, "limit": PAGE_SIZE, "sort_by": "TIMECREATED",
                                  "sort_order": "ASC"}
            if page:
                kw["page"] = page
            resp = client.call("ListSecrets", None, partial(vc.list_secrets, self._compartment, **kw))
            if not isinstance(resp.data, builtins.list) or not all(
                    isinstance(i.id, str) and isinstance(i.secret_name, str) and isinstance(i.lifecycle_state, str)
                    for i in resp.data):
                raise client.not_oci("ListSecrets")
            items += resp.data
            page = resp.next_page
            if not page:
                return items

    def list(self, scope: Scope) -> builtins.list[ObservedEntry]:
        """In-scope secrets; a version marker (one GetSecret each, in parallel) for those the
        sync wants or reconciler manages, the only ones whose value a plan may need.

        The seed's "a sync fails and retries while a secret is changing state" holds for this
        sync's own secrets (wanted, or tagged as written by it): each is waited for up to
        :data:`SETTLE_WAIT`, then the sync fails, retryably. Any other secret changing state
        is left alone this run (hands off), so a foreign one never blocks a sync — even when
        one listing serves several syncs on the vault (``scope`` is then wider than ours).
        """
        if scope.pending_only:
            return []  # our listing shows pending-deletion secrets: the shared one has them
        listed: dict[str, Any] = {}
        for s in self._pages():
            if s.lifecycle_state not in rules.GONE and scope.contains(s.secret_name):
                listed[s.secret_name] = s
        looked: builtins.list[str] = []
        own: set[str] = set()
        with self._lock:
            for name, s in listed.items():
                tags = {str(k): str(v) for k, v in (s.freeform_tags or {}).items()}
                self._known[name] = _Known(s.id, s.lifecycle_state, tags)
                state, wanted = s.lifecycle_state, name in scope.wanted
                if wanted or tags.get(SYNC_TAG) == self._sync:
                    own.add(name)
                if state in rules.TRANSITIONAL:
                    if name in own:
                        looked.append(name)
                elif state == "ACTIVE":
                    if wanted or tags.get(OWNER_TAG) == OWNER_VALUE:
                        looked.append(name)
                elif state == "PENDING_DELETION" and wanted:
                    looked.append(name)  # its marker lets state vouch for a restored value
        out = [e for e in self._parallel(partial(self._settled, own=own), looked) if e is not None]
        out += [self._entry(n) for n in listed if n not in looked]
        return out

    def _parallel(self, fn: Callable[[str], Any], names: Sequence[str]) -> builtins.list[Any]:
        """``fn`` over ``names``, ``maxConcurrency`` at a time, each in a copy of this context (the
        run's deadline and the log context follow the work onto the pool's threads)."""
        if len(names) <= 1:
            return [fn(n) for n in names]
        with ThreadPoolExecutor(max_workers=min(self._workers, len(names)), thread_name_prefix="oci") as pool:
            futures = [pool.submit(contextvars.copy_context().run, fn, n) for n in names]
            return [f.result() for f in futures]

    def _get(self, name: str) -> Any | None:
        """GetSecret (metadata, never the value); None when it vanished since the listing."""
        known = self._known[name]
        try:
            secret = client.call("GetSecret", name, lambda: self._clients.vaults.get_secret(known.id)).data
        except errors.NotFound:
            return None
        if secret.id != known.id or not isinstance(secret.lifecycle_state, str):
            raise client.not_oci("GetSecret", name)
        with self._lock:
            self._known[name] = _Known(secret.id, secret.lifecycle_state, dict(secret.freeform_tags or {}),
                                       secret.current_version_number)
        return secret

    def _settled(self, name: str, own: set[str]) -> ObservedEntry | None:
        """GetSecret; a secret of ours changing state is waited for (bounded), any other is
        returned as it is (hands off: DISABLED)."""
        waited = 0.0
        while True:
            secret = self._get(name)
            if secret is None or secret.lifecycle_state in rules.GONE:
                return None
            state = secret.lifecycle_state
            if state not in rules.TRANSITIONAL or name not in own:
                return self._entry(name)
            if waited >= SETTLE_WAIT:
                raise errors.Transient(f"{state} in OCI Vault for over {SETTLE_WAIT:g}s; this sync retries until "
                                       "it settles", key=name, code=state)
            waited += POLL
            client.pause(f"GetSecret until {state} settles", round(waited / POLL), POLL, name)

    def _entry(self, name: str) -> ObservedEntry:
        k = self._known[name]
        return ObservedEntry(key=name, version=rules.version_marker(k.id, k.version),
                             lifecycle=rules.lifecycle(k.state), owner=k.tags.get(SYNC_TAG),
                             properties=frozen_map({f"tag:{t}": v for t, v in k.tags.items()}))

    def _resolve(self, names: Sequence[str]) -> None:
        """Learn the OCIDs of names this session did not list itself (one listing may serve
        several syncs, and only the first of them lists): by name, or one full listing when
        many are missing. Names still unknown afterwards do not exist."""
        missing = [n for n in dict.fromkeys(names) if n not in self._known]
        if not missing:
            return
        found: builtins.list[Any] = []
        if len(missing) > NAME_LOOKUPS:
            found = self._pages()
        else:
            vc = self._clients.vaults
            for name in missing:
                resp = client.call("ListSecrets", name, partial(vc.list_secrets, self._compartment,
                                                                vault_id=self._vault, name=name))
                if not isinstance(resp.data, builtins.list) or not all(
                        isinstance(i.id, str) and isinstance(i.lifecycle_state, str) for i in resp.data):
                    raise client.not_oci("ListSecrets", name)
                found += [i for i in resp.data if i.secret_name == name]
        wanted = set(missing)
        with self._lock:
            for s in found:
                if s.secret_name in wanted and s.lifecycle_state not in rules.GONE:
                    tags = {str(k): str(v) for k, v in (s.freeform_tags or {}).items()}
                    self._known[s.secret_name] = _Known(s.id, s.lifecycle_state, tags)

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """GetSecretBundle (the current version) per key, in parallel; unknown, vanished and
        non-text secrets are left out."""
        self._resolve(keys)
        wanted = [k for k in dict.fromkeys(keys) if k in self._known]
        values = self._parallel(self._value, wanted)
        return {k: v for k, v in zip(wanted, values, strict=True) if v is not None}

    def _value(self, name: str) -> SecretValue | None:
        sid = self._known[name].id
        try:
            bundle = client.call("GetSecretBundle", name, lambda: self._clients.secrets.get_secret_bundle(sid)).data
        except errors.NotFound:
            return None
        if bundle.secret_bundle_content is None:
            raise client.not_oci("GetSecretBundle", name)
        content = getattr(bundle.secret_bundle_content, "content", None)
        if not isinstance(content, str):
            return None
        try:
            return SecretValue(base64.b64decode(content, validate=True).decode("utf-8"))
        except (binascii.Error, ValueError):
            return None  # not base64 text we wrote: its value is unknown to the planner

    # -- apply -----------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Bounded concurrency across keys, plan order within a key (RESTORE before UPDATE)."""
        writes = [c for c in changes if c.action is not Action.IMPORT]  # imports go to the source
        self._resolve([c.key for c in writes if c.action is not Action.CREATE])
        apply_by_key(writes, self._apply_one, on_result, workers=self._workers)

    def _apply_one(self, change: Change) -> ChangeResult:
        if change.action is Action.CREATE:
            return self._create(change)
        if change.action is Action.UPDATE:
            return self._update(change)
        if change.action is Action.DELETE:
            return self._delete(change)
        if change.action is Action.RESTORE:
            return self._restore(change)
        raise errors.Permanent(f"unsupported action {change.action.value}", key=change.key)

    @staticmethod
    def _content(value: SecretValue | None, key: str) -> Any:
        from oci.vault.models import Base64SecretContentDetails

        if value is None:
            raise errors.Permanent("write without a value", key=key)
        return Base64SecretContentDetails(content_type="BASE64",
                                          content=base64.b64encode(value.reveal().encode()).decode())

    def _tags(self, change: Change) -> dict[str, str]:
        """The full freeform tag set after this change: the secret's tags minus those we drop,
        plus ours (UpdateSecret replaces the whole map, and others' tags are kept)."""
        known = self._known.get(change.key)
        tags = dict(known.tags) if known is not None and change.action is not Action.CREATE else {}
        for prop in change.unset_properties:
            if prop.startswith("tag:"):
                tags.pop(prop[4:], None)
        tags.update({k[4:]: v for k, v in change.set_properties.items() if k.startswith("tag:")})
        return tags

    def _done(self, change: Change, secret: Any, tags: Mapping[str, str]) -> ChangeResult:
        if not isinstance(secret.id, str) or not isinstance(secret.current_version_number, int):
            raise client.not_oci(f"{change.action.value} of a secret", change.key)
        with self._lock:
            self._known[change.key] = _Known(secret.id, "ACTIVE", dict(tags), secret.current_version_number)
        return ChangeResult(change=change, ok=True, version=rules.version_marker(secret.id,
                                                                                 secret.current_version_number),
                            properties=frozen_map({f"tag:{k}": v for k, v in tags.items()}))

    def _create(self, change: Change) -> ChangeResult:
        from oci.vault.models import CreateSecretDetails

        key, tags = change.key, self._tags(change)
        details = CreateSecretDetails(compartment_id=self._compartment, vault_id=self._vault, key_id=self._key,
                                      secret_name=key, description=f"Managed by reconciler (sync {self._sync})",
                                      freeform_tags=tags, secret_content=self._content(change.value, key))
        try:
            secret = client.call("CreateSecret", key, lambda: self._clients.vaults.create_secret(details),
                                 write=True).data
        except errors.Conflict as exc:
            raise errors.Conflict(SCHEDULED_MSG, key=key, code=exc.code) from None
        return self._done(change, secret, tags)

    def _known_or_fail(self, key: str) -> _Known:
        known = self._known.get(key)
        if known is None:
            raise errors.NotFound("not in the listing this plan was made from; re-plan", key=key)
        return known

    def _update(self, change: Change) -> ChangeResult:
        from oci.vault.models import UpdateSecretDetails

        key, tags = change.key, self._tags(change)
        known = self._known_or_fail(key)
        value_changed = change.value_changed
        if value_changed and change.compare_first:
            # planned so: the value of a restored secret could not be read when planned
            value_changed = self._value(key) != change.value
        kw: dict[str, Any] = {}
        if value_changed:
            kw["secret_content"] = self._content(change.value, key)
        if tags != known.tags:
            kw["freeform_tags"] = tags
        if not kw:
            secret = self._get(key)
            if secret is None:
                raise errors.NotFound("vanished since the plan; re-plan", key=key)
            return self._done(change, secret, tags)
        details = UpdateSecretDetails(**kw)
        secret = client.call("UpdateSecret", key, lambda: self._clients.vaults.update_secret(known.id, details),
                             write=True).data
        return self._done(change, secret, tags)

    def _delete(self, change: Change) -> ChangeResult:
        """ScheduleSecretDeletion, never an immediate delete. Already gone or already
        scheduled meets the goal."""
        from oci.vault.models import ScheduleSecretDeletionDetails

        key = change.key
        known = self._known.get(key)
        if known is None:
            return ChangeResult(change=change, ok=True)
        details = ScheduleSecretDeletionDetails(time_of_deletion=rules.time_of_deletion(self._days))
        try:
            client.call("ScheduleSecretDeletion", key,
                        lambda: self._clients.vaults.schedule_secret_deletion(known.id, details), write=True)
        except errors.NotFound:
            pass
        except errors.Transient as exc:
            secret = self._get(key) if exc.code == "IncorrectState" else None
            if secret is None or secret.lifecycle_state not in ("PENDING_DELETION", "SCHEDULING_DELETION"):
                raise
        with self._lock:
            self._known.pop(key, None)
        return ChangeResult(change=change, ok=True)

    def _restore(self, change: Change) -> ChangeResult:
        """CancelSecretDeletion, then poll this one secret until it is ACTIVE (bounded)."""
        key = change.key
        known = self._known_or_fail(key)
        try:
            client.call("CancelSecretDeletion", key,
                        lambda: self._clients.vaults.cancel_secret_deletion(known.id), write=True)
        except errors.Transient as exc:
            if exc.code != "IncorrectState":
                raise  # IncorrectState: cancelling already, or active again; the polling tells
        waited = 0.0
        while True:
            secret = self._get(key)
            if secret is None:
                raise errors.NotFound("deleted before it could be restored; the next plan creates it", key=key)
            if secret.lifecycle_state == "ACTIVE":
                return self._done(change, secret, self._known[key].tags)
            if waited >= RESTORE_WAIT:
                raise errors.Transient(f"still {secret.lifecycle_state} {RESTORE_WAIT:g}s after cancelling its "
                                       "deletion; the next run continues", key=key, code=secret.lifecycle_state)
            waited += POLL
            client.pause("GetSecret until the cancelled deletion settles", round(waited / POLL), POLL, key)

    def close(self) -> None:
        """The clients are shared across runs (client caches them), so they stay open."""
