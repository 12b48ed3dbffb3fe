"""Azure Key Vault destination.

Cost of a no-change reconcile with warm state: ⌈T/25⌉ GetSecrets pages (T = secrets in the
vault; the listing already carries tags and ``attributes.updated``, our version marker) and
nothing else. A value is read (GET, bounded concurrency) only for a key whose ``updated``
differs from the one state recorded. Deleted-secret lookups happen only when a desired key
is missing from the listing, so a soft-deleted name can be planned as an explicit restore.
Upstream, by contrast, GETs every enabled secret in the vault on every sync.
"""

from __future__ import annotations

import builtins
import contextvars
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import bundle, errors
from reconciler.destinations.azure_key_vault import client as azure_client
from reconciler.destinations.azure_key_vault import rules as azure_rules
from reconciler.destinations.azure_key_vault.client import Reply
from reconciler.destinations.azure_key_vault.rules import fold
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope, apply_by_key
from reconciler.model import SYNC_TAG, Lifecycle, ObservedEntry, SecretValue, frozen_map

#: the property a secret's contentType is listed as (not ours: kept as it is on new versions)
CONTENT_TYPE = "contentType"
#: missing desired keys looked up one by one below this count; above it, list deleted secrets
DELETED_LOOKUPS = 3
#: how long a recover may take to become readable (Key Vault recovers asynchronously)
RECOVER_WAIT = 30.0
SOFT_DELETED_MSG = "the name is soft-deleted (deleted but recoverable); the next plan restores it"


@dataclass
class _Seen:
    """What the last listing or response said about a secret (a new version keeps them)."""

    tags: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


def _int_setting(settings: Mapping[str, Any], name: str, default: int) -> int:
    v = settings.get(name, default)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default


class AzureKeyVault:
    """A session on one Key Vault for one sync."""

    def __init__(self, view: SyncView, connection: ConnectionInfo) -> None:
        url = azure_rules.vault_url(view)
        if not url.lower().startswith("https://"):
            raise errors.ConfigError("destinationConfig.vaultBaseUrl must be an https:// URL")
        self._many = view.many_to_one
        self._workers = _int_setting(connection.settings, "maxConcurrency", 8)
        #: by folded name: what the last listing or answer said (a new version keeps its tags)
        self._seen: dict[str, _Seen] = {}
        self._restored: dict[str, Reply] = {}
        client = azure_client.make_client(connection, url)
        self._http = azure_client.VaultHttp(client, attempts=_int_setting(connection.settings, "maxAttempts", 5))

    @property
    def http(self) -> azure_client.VaultHttp:
        return self._http

    # -- observation -----------------------------------------------------------------------
    def _pages(self, url: str) -> builtins.list[Mapping[str, Any]]:
        items: builtins.list[Mapping[str, Any]] = []
        next_url: str | None = url
        while next_url:
            reply = self._http.call("GET", next_url)
            items += [i for i in reply.body.get("value") or [] if isinstance(i, Mapping)]
            link = reply.body.get("nextLink")
            next_url = str(link) if link else None
        return items

    def list(self, scope: Scope) -> builtins.list[ObservedEntry]:
        """GetSecrets pages (tags and ``updated`` included), plus soft-deleted wanted names
        (Key Vault lists deleted secrets apart, so only those we want are looked up)."""
        out: dict[str, ObservedEntry] = {}
        if scope.pending_only:  # a shared listing of the vault is held: only deleted names
            found = (self._observed(item, deleted=True) for item in self._deleted(sorted(scope.wanted)))
            return [e for e in found if e is not None]
        for item in self._pages(f"/secrets?maxresults={azure_rules.PAGE_SIZE}"):
            entry = self._observed(item, deleted=False)
            if entry is not None:
                out[fold(entry.key)] = entry
        missing = sorted(n for n in scope.wanted if fold(n) not in out)
        for item in self._deleted(missing):
            entry = self._observed(item, deleted=True)
            if entry is not None and fold(entry.key) not in out:
                out[fold(entry.key)] = entry
        return list(out.values())

    def _deleted(self, names: builtins.list[str]) -> builtins.list[Mapping[str, Any]]:
        if not names:
            return []
        if len(names) > DELETED_LOOKUPS:
            wanted = {fold(n) for n in names}
            return [i for i in self._pages(f"/deletedsecrets?maxresults={azure_rules.PAGE_SIZE}")
                    if fold(azure_rules.name_from_id(str(i.get("id", ""))) or "") in wanted]
        found = []
        for name in names:
            reply = self._http.call("GET", f"/deletedsecrets/{name}", key=name, expect=(200, 404))
            if reply.status == 200:
                found.append(reply.body)
        return found

    def _observed(self, item: Mapping[str, Any], *, deleted: bool) -> ObservedEntry | None:
        name = azure_rules.name_from_id(str(item.get("id", "")))
        if name is None:
            return None
        attrs = item.get("attributes") or {}
        tags = {str(k): str(v) for k, v in (item.get("tags") or {}).items()}
        self._seen[fold(name)] = _Seen(tags, item.get("contentType"))
        props = {f"tag:{k}": v for k, v in tags.items()}
        if item.get("contentType") is not None:  # kept across new versions (another tool's setting)
            props[CONTENT_TYPE] = str(item["contentType"])
        if deleted:
            lifecycle = Lifecycle.PENDING_DELETION
        elif not attrs.get("enabled", True) or item.get("managed"):
            lifecycle = Lifecycle.DISABLED  # disabled, or backing a certificate: hands off
        else:
            lifecycle = Lifecycle.ACTIVE
        updated = attrs.get("updated")
        return ObservedEntry(key=name, version=str(updated) if updated is not None else None, lifecycle=lifecycle,
                             owner=tags.get(SYNC_TAG), properties=frozen_map(props))

    def _get(self, name: str) -> Reply:
        """The latest version (value included); 403 for a disabled secret, 404 when absent."""
        reply = self._http.call("GET", f"/secrets/{name}/", key=name, expect=(200, 403, 404))
        if reply.status == 403 and azure_client.error_code(reply.body)[1] != "SecretDisabled":
            raise azure_client.from_status(reply, "get", name)
        return reply

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """GET per key, ``maxConcurrency`` at a time; disabled or vanished keys are left out."""
        wanted = list(dict.fromkeys(keys))
        with ThreadPoolExecutor(max_workers=max(1, min(self._workers, len(wanted)))) as pool:
            replies = list(pool.map(lambda k: contextvars.copy_context().run(self._get, k), wanted))
        out: dict[str, SecretValue] = {}
        for name, reply in zip(wanted, replies, strict=True):
            value = reply.body.get("value") if reply.status == 200 else None
            if isinstance(value, str):
                out[name] = SecretValue(bundle.canonicalize(value) if self._many else value)
        return out

    # -- apply -----------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Bounded concurrency across keys, plan order within a key (RESTORE before UPDATE);
        a failed change is reported and the others still run."""
        writes = [c for c in changes if c.action is not Action.IMPORT]
        apply_by_key(writes, self._apply_one, on_result, workers=self._workers)

    def _apply_one(self, change: Change) -> ChangeResult:
        key = change.key
        if change.action in (Action.CREATE, Action.UPDATE):
            return self._write(change)
        if change.action is Action.DELETE:
            # soft delete; a 404 (already gone, or a retried delete that landed) meets the goal
            self._http.call("DELETE", f"/secrets/{key}", key=key, expect=(200, 404))
            return ChangeResult(change=change, ok=True)
        if change.action is Action.RESTORE:
            return self._restore(change)
        raise errors.Permanent(f"unsupported action {change.action.value}", key=key)

    def _tags(self, change: Change) -> dict[str, str]:
        """The full tag set after this change: what the secret carries now, minus the tags we
        drop, plus the ones we set (a new version would otherwise lose foreign tags)."""
        if change.properties_after is not None:  # planned: ours and others' tags
            return {k[4:]: v for k, v in change.properties_after.items() if k.startswith("tag:")}
        seen = self._seen.get(fold(change.key))
        tags = dict(seen.tags) if seen and change.action is not Action.CREATE else {}
        for prop in change.unset_properties:
            if prop.startswith("tag:"):
                tags.pop(prop[4:], None)
        tags.update({k[4:]: v for k, v in change.set_properties.items() if k.startswith("tag:")})
        return tags

    def _write(self, change: Change) -> ChangeResult:
        key, tags = change.key, self._tags(change)
        props = frozen_map({f"tag:{k}": v for k, v in tags.items()})
        if not change.value_changed:
            reply = self._http.call("PATCH", f"/secrets/{key}/", key=key, body={"tags": tags})
            return self._done(change, reply, props)
        if change.value is None:
            raise errors.Permanent(f"{change.action.value} without a value", key=key)
        want = change.value
        restored = self._restored.pop(key, None)
        if change.compare_first and restored is None:
            restored = self._get(key)  # planned so: the value was unknown when planned
        if change.compare_first and restored is not None and _holds(restored, want):
            # compare first: the restored value is already the one wanted; tags at most
            if dict(restored.body.get("tags") or {}) == tags:
                return self._done(change, restored, props)
            reply = self._http.call("PATCH", f"/secrets/{key}/", key=key, body={"tags": tags})
            return self._done(change, reply, props)
        body: dict[str, Any] = {"value": want.reveal(), "tags": tags}
        seen = self._seen.get(fold(key))
        content_type = (change.properties_after or {}).get(CONTENT_TYPE) or (seen.content_type if seen else None)
        if content_type is not None and change.action is not Action.CREATE:
            body["contentType"] = content_type

        def landed() -> Reply | None:
            current = self._get(key)
            return current if _holds(current, want, tags) else None

        try:
            reply = self._http.call("PUT", f"/secrets/{key}", key=key, body=body, landed=landed)
        except errors.Conflict as exc:
            if exc.code == "ObjectIsDeletedButRecoverable":
                raise errors.Conflict(SOFT_DELETED_MSG, key=key, code=exc.code) from None
            raise
        return self._done(change, reply, props)

    def _done(self, change: Change, reply: Reply, props: Mapping[str, str]) -> ChangeResult:
        body = reply.body
        tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        self._seen[fold(change.key)] = _Seen(tags, body.get("contentType"))
        updated = (body.get("attributes") or {}).get("updated")
        return ChangeResult(change=change, ok=True, version=str(updated) if updated is not None else None,
                            properties=props)

    def _restore(self, change: Change) -> ChangeResult:
        """Recover, then wait until the secret reads back (Key Vault recovers asynchronously,
        and a write before that is refused with ObjectIsBeingRecovered)."""
        key = change.key
        reply = self._http.call("POST", f"/deletedsecrets/{key}/recover", key=key, expect=(200, 404, 409))
        if reply.status == 409 and azure_client.error_code(reply.body)[1] not in (None, "ObjectIsBeingRecovered"):
            raise azure_client.from_status(reply, "recover", key)
        waited = 0.0
        while True:
            current = self._get(key)
            if current.status in (200, 403):
                break
            if reply.status == 404:  # neither soft-deleted nor active: purged since the plan
                raise errors.NotFound("recover failed: the secret is no longer soft-deleted (purged?); "
                                      "the next plan creates it", key=key)
            if waited >= RECOVER_WAIT:
                raise errors.Transient(f"recover did not complete within {RECOVER_WAIT:g}s", key=key)
            azure_client.sleep(1.0)
            waited += 1.0
        if current.status == 200:
            self._restored[key] = current
            return self._done(change, current, frozen_map())
        return ChangeResult(change=change, ok=True)

    def close(self) -> None:
        self._http.close()


def _holds(reply: Reply, want: SecretValue, tags: Mapping[str, str] | None = None) -> bool:
    """Whether a GET answer already carries this value (and these tags, when given)."""
    value = reply.body.get("value") if reply.status == 200 else None
    if not isinstance(value, str) or SecretValue(value) != want:
        return False
    return tags is None or dict(reply.body.get("tags") or {}) == dict(tags)
