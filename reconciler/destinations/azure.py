"""Azure Key Vault destination.

Cost of a no-change reconcile with warm state: ⌈T/25⌉ GetSecrets pages (T = secrets in the
vault; the listing already carries tags and ``attributes.updated``, our version marker) and
nothing else. A value is read (GET, bounded concurrency) only for a key whose ``updated``
differs from the one state recorded. Deleted-secret lookups happen only when a desired key
is missing from the listing, so a soft-deleted name can be planned as an explicit restore.
Upstream, by contrast, GETs every enabled secret in the vault on every sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler import keyschema
from reconciler.destinations import azure_client, azure_rules, bundle, errors
from reconciler.destinations.azure_client import Reply
from reconciler.destinations.azure_rules import fold, to_vault_name
from reconciler.destinations.base import Capabilities, ConnectionInfo, DesiredSpec, Scope, Target, apply_by_key
from reconciler.model import (
    OWNER_TAG,
    OWNER_VALUE,
    SYNC_TAG,
    Action,
    Change,
    ChangeResult,
    Lifecycle,
    ObservedEntry,
    SecretValue,
    SourceSecret,
    frozen_map,
)

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
    """One sync's view of one Key Vault."""

    kind = "azure-key-vault"
    capabilities = Capabilities(can_import=True, values_readable=True, tags=True, allows_empty=True,
                                max_value_bytes=azure_rules.MAX_VALUE_BYTES, case_insensitive=True)

    def __init__(self, target: Target, connection: ConnectionInfo) -> None:
        self._target = target
        cfg = target.destination_config
        url = str(cfg.get("vaultBaseUrl") or "").strip().rstrip("/")
        if not url.lower().startswith("https://"):
            raise errors.ConfigError("destinationConfig.vaultBaseUrl must be an https:// URL")
        self._many = cfg.get("mappingBehavior", "one-to-one") == "many-to-one"
        self._env = to_vault_name(target.environment)
        self._schema = keyschema.transform(target.key_schema, to_vault_name)
        self._workers = _int_setting(connection.settings, "maxConcurrency", 8)
        #: fold(name) -> the spelling desired() chose; None until desired() ran
        self._spelling: dict[str, str] | None = None
        self._source_key: dict[str, str] = {}  # fold(name) -> source key
        self._blocked: set[str] = set()  # fold(name) of names several source keys collide on
        self._seen: dict[str, _Seen] = {}
        self._restored: dict[str, Reply] = {}
        client = azure_client.make_client(connection, url)
        self._http = azure_client.VaultHttp(client, attempts=_int_setting(connection.settings, "maxAttempts", 5))

    @property
    def http(self) -> azure_client.VaultHttp:
        return self._http

    # -- names and scope -------------------------------------------------------------------
    def _many_name(self) -> str | None:
        name = self._target.destination_config.get("secretName")
        return str(name) if name else None

    def scope(self) -> Scope:
        if self._many:
            name = self._many_name()
            return Scope(key_schema=None, environment=self._env, exact=frozenset({name} if name else ()))
        return Scope(key_schema=self._schema, environment=self._env)

    def _canonical(self, name: str) -> str:
        """A listed name in the spelling the planner compares with: the desired one when it
        folds equal, else with the schema's literal prefix/suffix in the schema's case."""
        if self._spelling and fold(name) in self._spelling:
            return self._spelling[fold(name)]
        schema = self._schema
        if schema and not keyschema.matches(name, schema, self._env):
            parts = keyschema.render(schema, keyschema.SECRET_KEY, self._env).split(keyschema.SECRET_KEY)
            prefix, suffix = parts[0], parts[-1] if len(parts) > 1 else ""
            if (len(parts) > 1 and len(name) >= len(prefix) + len(suffix)
                    and fold(name).startswith(fold(prefix)) and fold(name).endswith(fold(suffix))):
                fixed = prefix + name[len(prefix) : len(name) - len(suffix)] + suffix
                if keyschema.matches(fixed, schema, self._env):
                    return fixed
        return name

    # -- desired state ---------------------------------------------------------------------
    def _properties(self) -> dict[str, str]:
        return {f"tag:{OWNER_TAG}": OWNER_VALUE, f"tag:{SYNC_TAG}": self._target.sync}

    def desired(self, secrets: Sequence[SourceSecret]) -> tuple[list[DesiredSpec], list[str]]:
        """Source secrets under their vault names. Two source keys that become one name
        ('_' -> '-', case folded) are an error for both, and the vault secret of that name
        is left alone (hidden from the plan, neither written nor deleted)."""
        self._spelling, self._source_key, self._blocked = {}, {}, set()
        if self._many:
            return self._desired_many(secrets)
        groups: dict[str, list[tuple[str, SourceSecret]]] = {}
        for s in secrets:
            name = to_vault_name(keyschema.render(self._target.key_schema, s.key, self._target.environment))
            groups.setdefault(fold(name), []).append((name, s))
        out: list[DesiredSpec] = []
        found: list[str] = []
        props = frozen_map(self._properties())
        for folded, group in sorted(groups.items()):
            if len(group) > 1:
                self._blocked.add(folded)
                keys = ", ".join(sorted(s.key for _, s in group))
                found.append(f"{group[0][0]}: source keys {keys} all become this Key Vault name ('_' is written "
                             "as '-' and names are case-insensitive); none is written and the vault secret "
                             "is left alone until they are renamed")
                continue
            name, s = group[0]
            problem = azure_rules.name_problem(name)
            if problem:
                found.append(f"{s.key}: {problem}")
                continue
            self._spelling[folded], self._source_key[folded] = name, s.key
            out.append(DesiredSpec(key=name, value=s.value, properties=props, source_keys=(s.key,)))
        return out, found

    def _desired_many(self, secrets: Sequence[SourceSecret]) -> tuple[list[DesiredSpec], list[str]]:
        name = self._many_name()
        if not name:
            return [], ["destinationConfig.secretName is required for many-to-one"]
        problem = azure_rules.name_problem(name)
        if problem:
            return [], [problem]
        assert self._spelling is not None
        self._spelling[fold(name)] = name
        if not secrets:
            return [], []
        body = bundle.canonical_json({s.key: s.value.reveal() for s in secrets})
        return [DesiredSpec(key=name, value=SecretValue(body), properties=frozen_map(self._properties()),
                            source_keys=tuple(s.key for s in secrets))], []

    # -- observation -----------------------------------------------------------------------
    def _pages(self, url: str) -> list[Mapping[str, Any]]:
        items: list[Mapping[str, Any]] = []
        next_url: str | None = url
        while next_url:
            reply = self._http.call("GET", next_url)
            items += [i for i in reply.body.get("value") or [] if isinstance(i, Mapping)]
            link = reply.body.get("nextLink")
            next_url = str(link) if link else None
        return items

    def list_entries(self) -> list[ObservedEntry]:
        """GetSecrets pages (tags and ``updated`` included), plus soft-deleted desired names."""
        out: dict[str, ObservedEntry] = {}
        for item in self._pages(f"/secrets?maxresults={azure_rules.PAGE_SIZE}"):
            entry = self._observed(item, deleted=False)
            if entry is not None:
                out[fold(entry.key)] = entry
        missing = [n for f, n in (self._spelling or {}).items() if f not in out]
        for item in self._deleted(missing):
            entry = self._observed(item, deleted=True)
            if entry is not None and fold(entry.key) not in out:
                out[fold(entry.key)] = entry
        return list(out.values())

    def _deleted(self, names: list[str]) -> list[Mapping[str, Any]]:
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
        raw = azure_rules.name_from_id(str(item.get("id", "")))
        if raw is None or fold(raw) in self._blocked:
            return None
        name = self._canonical(raw)
        attrs = item.get("attributes") or {}
        tags = {str(k): str(v) for k, v in (item.get("tags") or {}).items()}
        self._seen[name] = _Seen(tags, item.get("contentType"))
        if deleted:
            lifecycle = Lifecycle.PENDING_DELETION
        elif not attrs.get("enabled", True) or item.get("managed"):
            lifecycle = Lifecycle.DISABLED  # disabled, or backing a certificate: hands off
        else:
            lifecycle = Lifecycle.ACTIVE
        updated = attrs.get("updated")
        return ObservedEntry(key=name, version=str(updated) if updated is not None else None, lifecycle=lifecycle,
                             owner=tags.get(SYNC_TAG), properties=frozen_map({f"tag:{k}": v for k, v in tags.items()}))

    def _get(self, name: str) -> Reply:
        """The latest version (value included); 403 for a disabled secret, 404 when absent."""
        reply = self._http.call("GET", f"/secrets/{name}/", key=name, expect=(200, 403, 404))
        if reply.status == 403 and azure_client.error_code(reply.body)[1] != "SecretDisabled":
            raise azure_client.from_status(reply, "get", name)
        return reply

    def read_values(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """GET per key, ``maxConcurrency`` at a time; disabled or vanished keys are left out."""
        wanted = list(dict.fromkeys(keys))
        with ThreadPoolExecutor(max_workers=max(1, min(self._workers, len(wanted)))) as pool:
            replies = list(pool.map(self._get, wanted))
        out: dict[str, SecretValue] = {}
        for name, reply in zip(wanted, replies, strict=True):
            value = reply.body.get("value") if reply.status == 200 else None
            if isinstance(value, str):
                out[name] = SecretValue(bundle.canonicalize(value) if self._many else value)
        return out

    def importable(self, values: Mapping[str, SecretValue]) -> dict[str, SecretValue]:
        """Vault values keyed by source key: a name the source already renders to maps to
        that key; any other loses the schema's affixes and has '-' turned back into '_'."""
        if self._many:
            name = self._many_name()
            v = values.get(name) if name else None
            return {k: SecretValue(x) for k, x in bundle.scalars(v.reveal()).items()} if v else {}
        out: dict[str, SecretValue] = {}
        for name, value in values.items():
            key = self._source_key.get(fold(name))
            if key is None:
                stripped = keyschema.strip(name, self._schema, self._env)
                key = stripped.replace("-", "_") if stripped else None
            if key:
                out[key] = value
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
        seen = self._seen.get(change.key)
        tags = dict(seen.tags) if seen and change.action is not Action.CREATE else {}
        for prop in change.unset_properties:
            if prop.startswith("tag:"):
                tags.pop(prop[4:], None)
        tags.update({k[4:]: v for k, v in change.set_properties.items() if k.startswith("tag:")})
        problems = azure_rules.tag_problems(tags)
        if problems:
            raise errors.Permanent("; ".join(problems), key=change.key)
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
        if restored is not None and _holds(restored, want):
            # compare first: the restored value is already the one wanted; tags at most
            if dict(restored.body.get("tags") or {}) == tags:
                return self._done(change, restored, props)
            reply = self._http.call("PATCH", f"/secrets/{key}/", key=key, body={"tags": tags})
            return self._done(change, reply, props)
        body: dict[str, Any] = {"value": want.reveal(), "tags": tags}
        seen = self._seen.get(key)
        if seen is not None and seen.content_type is not None and change.action is not Action.CREATE:
            body["contentType"] = seen.content_type

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
        self._seen[change.key] = _Seen(tags, body.get("contentType"))
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
