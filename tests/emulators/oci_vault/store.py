"""OCI Vault secrets (management, /20180608) and secret bundles (retrieval, /20190301) as
state + operations, written from the SDK facts in protocols.md §4 and test-infrastructure.md §4.

Pure: no sockets. Every operation returns a :class:`Reply` shaped like the service's
(``{"code","message"}`` errors, ``etag`` and ``opc-next-page`` headers). Writes answer
with the transitional state (CREATING, UPDATING, SCHEDULING_DELETION, CANCELLING_DELETION)
and settle on the next look at the secret, unless :attr:`VaultStore.transition_reads` (or
:meth:`VaultStore.hold`) keeps it transitional for N more reads. Time comes from an
injectable clock plus :attr:`offset`, so tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
import secrets as _random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tests.emulators.httpserver import Reply
from tests.emulators.oci_vault.model import (
    DAY,
    DEFAULT_COMPARTMENT,
    DEFAULT_DELETION_DAYS,
    DEFAULT_KEY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_VAULT,
    MAX_DELETION_DAYS,
    MAX_PAGE_SIZE,
    MIN_DELETION_DAYS,
    NAME,
    Secret,
    Version,
    content_of,
    decode_page,
    encode_page,
    error,
    etag_mismatch,
    full,
    not_found,
    parse_stamp,
    stamp,
    summary,
    tags_error,
)


class VaultStore:
    """Every secret the emulator holds, in any compartment and vault. Thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.offset = 0.0
        self._lock = threading.RLock()
        self._secrets: dict[str, Secret] = {}
        self.vaults: dict[str, tuple[str, set[str]]] = {}  # vault id -> (compartment, key ids)
        self.transition_reads = 0
        self.default_page_size = DEFAULT_PAGE_SIZE
        self.max_page_size = MAX_PAGE_SIZE
        self.reset()

    # -- test controls ---------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self.vaults = {DEFAULT_VAULT: (DEFAULT_COMPARTMENT, {DEFAULT_KEY})}
            self.offset = 0.0
            self.transition_reads = 0
            self.default_page_size = DEFAULT_PAGE_SIZE
            self.max_page_size = MAX_PAGE_SIZE

    def add_vault(self, vault: str, compartment: str, *keys: str) -> None:
        with self._lock:
            self.vaults[vault] = (compartment, set(keys))

    def hold(self, name: str, state: str, reads: int | None = None, *, vault: str = DEFAULT_VAULT) -> None:
        """Show ``state`` for the next ``reads`` looks at the secret (None: until released)."""
        with self._lock:
            s = self._by_name(vault, name)
            assert s is not None, f"no secret {name}"
            s.transient, s.reads_left = state, reads

    def release(self, name: str, *, vault: str = DEFAULT_VAULT) -> None:
        with self._lock:
            s = self._by_name(vault, name)
            assert s is not None, f"no secret {name}"
            s.transient, s.reads_left = None, 0

    def seed(self, name: str, value: bytes, *, vault: str = DEFAULT_VAULT, state: str = "ACTIVE",
             freeform: Mapping[str, str] | None = None) -> str:
        """A secret put there out of band (settled in ``state``); returns its id."""
        with self._lock:
            compartment, keys = self.vaults[vault]
            s = self._new(name, compartment, vault, sorted(keys)[0], base64.b64encode(value).decode())
            s.freeform = dict(freeform or {})
            s.transient = None
            s.state = state
            if state == "PENDING_DELETION":
                s.time_of_deletion = self.now() + DEFAULT_DELETION_DAYS * DAY
            return s.id

    def names(self, vault: str = DEFAULT_VAULT, *, states: frozenset[str] | None = None) -> set[str]:
        with self._lock:
            return {s.name for s in self._secrets.values()
                    if s.vault == vault and (states is None or self._settle(s, consume=False) in states)}

    def value(self, name: str, vault: str = DEFAULT_VAULT) -> bytes | None:
        """The current version's plaintext, bypassing the API (no read counted)."""
        with self._lock:
            s = self._by_name(vault, name)
            v = s.version(s.current) if s is not None else None
            return base64.b64decode(v.content) if v is not None else None

    def secret(self, name: str, vault: str = DEFAULT_VAULT) -> Secret | None:
        with self._lock:
            return self._by_name(vault, name)

    # -- internals -------------------------------------------------------------------------------
    def _by_name(self, vault: str, name: str) -> Secret | None:
        live = [s for s in self._secrets.values() if s.vault == vault and s.name == name]
        live.sort(key=lambda s: s.state == "DELETED")
        return live[0] if live else None

    def _new(self, name: str, compartment: str, vault: str, key: str, content: str) -> Secret:
        now = self.now()
        sid = f"ocid1.vaultsecret.oc1.iad.{_random.token_hex(20)}"
        s = Secret(id=sid, name=name, compartment=compartment, vault=vault, key=key, created=now,
                   versions=[Version(1, content, now)], etag=_random.token_hex(16))
        self._secrets[sid] = s
        return s

    def _settle(self, s: Secret, *, consume: bool = True) -> str:
        """The state a look at the secret shows now; a look uses up one held read."""
        if s.state == "PENDING_DELETION" and s.time_of_deletion is not None and self.now() >= s.time_of_deletion:
            s.state, s.transient = "DELETED", None
        if s.transient is None:
            return s.state
        if s.reads_left is not None and s.reads_left <= 0:
            if consume:
                s.transient = None
            return s.state
        if consume and s.reads_left is not None:
            s.reads_left -= 1
        return s.transient

    def _transition(self, s: Secret, shown: str, final: str) -> None:
        s.state, s.transient, s.reads_left = final, shown, self.transition_reads
        s.etag = _random.token_hex(16)

    def _get_live(self, secret_id: str) -> Secret | None:
        s = self._secrets.get(secret_id)
        if s is None or self._settle(s, consume=False) == "DELETED":
            return None
        return s

    def _changeable(self, secret_id: str, if_match: str | None, state: str) -> tuple[Secret | None, Reply | None]:
        """The live secret a change may touch: it exists, is in ``state`` (409 otherwise, as OCI
        answers) and its etag matches ``If-Match`` when one is given. Under the lock."""
        s = self._get_live(secret_id)
        if s is None:
            return None, not_found()
        now = self._settle(s)
        if now != state:
            return None, error(409, "IncorrectState", f"The secret is in lifecycle state {now}; it must be {state}.")
        return s, etag_mismatch(s, if_match)

    # -- /20180608 -------------------------------------------------------------------------------
    def create(self, body: Mapping[str, Any]) -> Reply:
        for req in ("compartmentId", "vaultId", "keyId", "secretName", "secretContent"):
            if not body.get(req):
                return error(400, "MissingParameter", f"Missing required parameter: {req}.")
        name = body["secretName"]
        if not isinstance(name, str) or not NAME.match(name):
            return error(400, "InvalidParameter", "secretName may contain only letters, digits, '-', '_' and "
                         "'.', and be at most 255 characters.")
        content, bad = content_of(body)
        bad = bad or tags_error(body)
        if bad is not None:
            return bad
        assert content is not None
        with self._lock:
            vault = self.vaults.get(body["vaultId"])
            if vault is None or vault[0] != body["compartmentId"]:
                return not_found()
            if body["keyId"] not in vault[1]:
                return error(404, "NotAuthorizedOrNotFound", "The key was not found in this vault.")
            taken = self._by_name(body["vaultId"], name)
            if taken is not None and self._settle(taken, consume=False) != "DELETED":
                return error(409, "Conflict", f"A secret with the name {name} already exists in this vault.")
            s = self._new(name, body["compartmentId"], body["vaultId"], body["keyId"], content)
            s.description = body.get("description")
            s.freeform = dict(body.get("freeformTags") or {})
            s.defined = dict(body.get("definedTags") or {})
            s.metadata = body.get("metadata")
            self._transition(s, "CREATING", "ACTIVE")
            return full(s, "CREATING")

    def get(self, secret_id: str) -> Reply:
        with self._lock:
            s = self._get_live(secret_id)
            return not_found() if s is None else full(s, self._settle(s))

    def list(self, query: Mapping[str, str]) -> Reply:
        compartment = query.get("compartmentId")
        if not compartment:
            return error(400, "MissingParameter", "Missing required parameter: compartmentId.")
        try:
            limit = int(query.get("limit") or self.default_page_size)
            offset = decode_page(query["page"]) if query.get("page") else 0
        except ValueError:
            return error(400, "InvalidParameter", "Invalid limit or page.")
        if limit < 1:
            return error(400, "InvalidParameter", "limit must be at least 1.")
        limit = min(limit, self.max_page_size)
        sort_by, order = query.get("sortBy", "TIMECREATED"), query.get("sortOrder")
        with self._lock:
            if not any(c == compartment for c, _ in self.vaults.values()):
                return not_found()
            wanted = query.get("lifecycleState", "").upper()
            rows = [s for s in self._secrets.values() if s.compartment == compartment
                    and query.get("vaultId", s.vault) == s.vault and query.get("name", s.name) == s.name
                    and (not wanted or self._settle(s, consume=False) == wanted)]
            if sort_by == "NAME":
                rows.sort(key=lambda s: (s.name, s.id), reverse=order == "DESC")
            else:
                rows.sort(key=lambda s: (s.created, s.id), reverse=order != "ASC")
            items = [summary(s, self._settle(s)) for s in rows[offset:offset + limit]]
        headers = {"opc-next-page": encode_page(offset + limit)} if offset + limit < len(rows) else {}
        return Reply(200, items, headers)

    def update(self, secret_id: str, body: Mapping[str, Any], if_match: str | None) -> Reply:
        content, bad = content_of(body)
        bad = bad or tags_error(body)
        if bad is not None:
            return bad
        rollback = body.get("currentVersionNumber")
        if rollback is not None and content is not None:
            return error(400, "InvalidParameter", "currentVersionNumber cannot be combined with secretContent.")
        with self._lock:
            s, bad = self._changeable(secret_id, if_match, "ACTIVE")
            if bad is not None:
                return bad
            assert s is not None
            if rollback is not None:
                if not isinstance(rollback, int) or s.version(rollback) is None:
                    return error(400, "InvalidParameter", f"Version {rollback} does not exist.")
                s.current = rollback
            if content is not None:
                number = max(v.number for v in s.versions) + 1
                s.versions.append(Version(number, content, self.now()))
                s.current = number
            for field_name, attr in (("description", "description"), ("freeformTags", "freeform"),
                                     ("definedTags", "defined"), ("metadata", "metadata")):
                if body.get(field_name) is not None:
                    setattr(s, attr, body[field_name])
            self._transition(s, "UPDATING", "ACTIVE")
            return full(s, "UPDATING")

    def schedule_deletion(self, secret_id: str, body: Mapping[str, Any], if_match: str | None) -> Reply:
        now = self.now()
        when = now + DEFAULT_DELETION_DAYS * DAY
        if body.get("timeOfDeletion"):
            try:
                when = parse_stamp(str(body["timeOfDeletion"]))
            except ValueError:
                return error(400, "InvalidParameter", "timeOfDeletion is not an RFC 3339 timestamp.")
            if not now + MIN_DELETION_DAYS * DAY - 60 <= when <= now + MAX_DELETION_DAYS * DAY + 60:
                return error(400, "InvalidParameter", f"timeOfDeletion must be between {MIN_DELETION_DAYS} and "
                             f"{MAX_DELETION_DAYS} days from now.")
        with self._lock:
            s, bad = self._changeable(secret_id, if_match, "ACTIVE")
            if bad is not None:
                return bad
            assert s is not None
            s.time_of_deletion = when
            self._transition(s, "SCHEDULING_DELETION", "PENDING_DELETION")
            return Reply(200, None, {"etag": s.etag})

    def cancel_deletion(self, secret_id: str, if_match: str | None) -> Reply:
        with self._lock:
            s, bad = self._changeable(secret_id, if_match, "PENDING_DELETION")
            if bad is not None:
                return bad
            assert s is not None
            s.time_of_deletion = None
            self._transition(s, "CANCELLING_DELETION", "ACTIVE")
            return Reply(200, None, {"etag": s.etag})

    # -- /20190301 -------------------------------------------------------------------------------
    def bundle(self, secret_id: str, query: Mapping[str, str]) -> Reply:
        with self._lock:
            s = self._get_live(secret_id)
            return not_found() if s is None else self._bundle(s, query)

    def bundle_by_name(self, query: Mapping[str, str]) -> Reply:
        for req in ("secretName", "vaultId"):
            if not query.get(req):
                return error(400, "MissingParameter", f"Missing required parameter: {req}.")
        with self._lock:
            s = self._by_name(query["vaultId"], query["secretName"])
            if s is None or self._settle(s, consume=False) == "DELETED":
                return not_found()
            return self._bundle(s, query)

    def _bundle(self, s: Secret, query: Mapping[str, str]) -> Reply:
        numbers = sorted(v.number for v in s.versions)
        stages = {s.current: ["CURRENT"], numbers[-1]: ["LATEST"]}
        if s.current == numbers[-1]:
            stages[s.current] = ["CURRENT", "LATEST"]
        older = [n for n in numbers if n < s.current]
        if older:
            stages.setdefault(older[-1], []).append("PREVIOUS")
        number = s.current
        if query.get("versionNumber"):
            try:
                number = int(query["versionNumber"])
            except ValueError:
                return error(400, "InvalidParameter", "versionNumber must be an integer.")
        elif query.get("stage"):
            match = [n for n, st in stages.items() if query["stage"].upper() in st]
            if not match:
                return not_found()
            number = match[0]
        v = s.version(number)
        if v is None:
            return not_found()
        return Reply(200, {"secretId": s.id, "versionNumber": v.number, "stages": stages.get(v.number, ["DEPRECATED"]),
                           "timeCreated": stamp(v.created),
                           "secretBundleContent": {"contentType": "BASE64", "content": v.content}})
