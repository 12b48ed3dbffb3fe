"""The Key Vault secrets data plane as state + operations, written from the REST spec
(shared/reference/specs/azure-keyvault/secrets-2025-07-01.json) and protocols.md §3.

Pure: no sockets. Every operation returns a :class:`Reply` (status, JSON body, headers)
shaped exactly like the service's, errors included. Names are case-insensitive (stored
under their lower-case form, shown as first created); timestamps are whole unix seconds
from an injectable clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.httpserver import Reply

NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS = 15
MAX_TAG_TEXT = 256
MAX_CONTENT_TYPE = 255
PAGE_MAX = 25
RECOVERABLE_DAYS = 90


def error(status: int, code: str, message: str, inner: str | None = None) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message}
    if inner:
        err["innererror"] = {"code": inner}
    return Reply(status, {"error": err})


def not_found(name: str, deleted: bool = False) -> Reply:
    what = "Deleted Secret" if deleted else "A secret"
    return error(404, "SecretNotFound", f"{what} with (name/id) {name} was not found in this key vault. "
                 "If you recently deleted this secret you may be able to recover it using the correct "
                 "recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


@dataclass
class Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int


@dataclass
class Secret:
    name: str  # as first created (case kept)
    versions: list[Version] = field(default_factory=list)
    deleted_date: int | None = None

    @property
    def latest(self) -> Version:
        return self.versions[-1]


class Vault:
    """One vault's secrets. Thread-safe (one lock; the server is threaded)."""

    def __init__(self, *, soft_delete: bool = True, purge_protection: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.soft_delete = soft_delete
        self.purge_protection = purge_protection
        self._clock = clock
        self.offset = 0.0  # seconds added to the clock (tests advance time with it)
        self._lock = threading.RLock()
        self._active: dict[str, Secret] = {}
        self._deleted: dict[str, Secret] = {}

    # -- helpers -------------------------------------------------------------------------------
    def now(self) -> int:
        return int(self._clock() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._deleted.clear()
            self.offset = 0.0

    @property
    def recovery_level(self) -> str:
        if not self.soft_delete:
            return "Purgeable"
        return "Recoverable" if self.purge_protection else "Recoverable+Purgeable"

    def _attributes(self, v: Version) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": v.enabled, "created": v.created, "updated": v.updated,
                                 "recoveryLevel": self.recovery_level,
                                 "recoverableDays": RECOVERABLE_DAYS if self.soft_delete else 0}
        if v.nbf is not None:
            attrs["nbf"] = v.nbf
        if v.exp is not None:
            attrs["exp"] = v.exp
        return attrs

    def _bundle(self, base: str, s: Secret, v: Version, *, value: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": f"{base}/secrets/{s.name}/{v.id}", "attributes": self._attributes(v),
                               "tags": dict(v.tags)}
        if value:
            out["value"] = v.value
        if v.content_type is not None:
            out["contentType"] = v.content_type
        return out

    def _item(self, base: str, s: Secret, v: Version, *, versioned: bool = False) -> dict[str, Any]:
        sid = f"{base}/secrets/{s.name}" + (f"/{v.id}" if versioned else "")
        out: dict[str, Any] = {"id": sid, "attributes": self._attributes(v), "tags": dict(v.tags)}
        if v.content_type is not None:
            out["contentType"] = v.content_type
        return out

    def _deleted_fields(self, base: str, s: Secret) -> dict[str, Any]:
        assert s.deleted_date is not None
        return {"recoveryId": f"{base}/deletedsecrets/{s.name}", "deletedDate": s.deleted_date,
                "scheduledPurgeDate": s.deleted_date + RECOVERABLE_DAYS * 86400}

    @staticmethod
    def _bad_name(name: str) -> Reply | None:
        if NAME.match(name):
            return None
        return error(400, "BadParameter", f"The request URI contains an invalid name: {name}")

    @staticmethod
    def _check_props(body: Mapping[str, Any]) -> Reply | None:
        tags = body.get("tags")
        if tags is not None:
            if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
                return error(400, "BadParameter", "Tags must be a JSON object of strings.")
            if len(tags) > MAX_TAGS:
                return error(400, "BadParameter", f"The number of tags exceeds the maximum of {MAX_TAGS}.")
            if any(len(k) > MAX_TAG_TEXT or len(v) > MAX_TAG_TEXT for k, v in tags.items()):
                return error(400, "BadParameter", "Tag names and values must be at most 256 characters.")
        ct = body.get("contentType")
        if ct is not None and (not isinstance(ct, str) or len(ct) > MAX_CONTENT_TYPE):
            return error(400, "BadParameter", "The content type must be at most 255 characters.")
        attrs = body.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            return error(400, "BadParameter", "Attributes must be a JSON object.")
        return None

    # -- secrets -------------------------------------------------------------------------------
    def set(self, base: str, name: str, body: Any) -> Reply:
        bad = self._bad_name(name)
        if bad:
            return bad
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return error(400, "BadParameter", "Property 'value' is required and must be a string.")
        bad = self._check_props(body)
        if bad:
            return bad
        if len(body["value"].encode("utf-8")) > MAX_VALUE_BYTES:
            return error(400, "BadParameter", "The secret value exceeds the maximum allowed size of 25 KB.")
        with self._lock:
            key = name.lower()
            if key in self._deleted:
                return error(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, "
                             "and its name cannot be reused; in this state, the secret can only be recovered "
                             "or purged.", "ObjectIsDeletedButRecoverable")
            s = self._active.get(key)
            if s is None:
                s = self._active[key] = Secret(name)
            attrs = body.get("attributes") or {}
            now = self.now()
            v = Version(uuid.uuid4().hex, body["value"], body.get("contentType"), dict(body.get("tags") or {}),
                        bool(attrs.get("enabled", True)), attrs.get("nbf"), attrs.get("exp"), now, now)
            s.versions.append(v)
            return Reply(200, self._bundle(base, s, v, value=True))

    def _version(self, name: str, version: str) -> tuple[Secret, Version] | Reply:
        s = self._active.get(name.lower())
        if s is None:
            return not_found(name)
        if not version:
            return s, s.latest
        for v in s.versions:
            if v.id == version:
                return s, v
        return error(404, "SecretNotFound",
                     f"A secret with (name/id) {name}/{version} was not found in this key vault.")

    def get(self, base: str, name: str, version: str) -> Reply:
        with self._lock:
            found = self._version(name, version)
            if isinstance(found, Reply):
                return found
            s, v = found
            if not v.enabled:
                return error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
            return Reply(200, self._bundle(base, s, v, value=True))

    def update(self, base: str, name: str, version: str, body: Any) -> Reply:
        if not isinstance(body, dict):
            return error(400, "BadParameter", "The request body must be a JSON object.")
        bad = self._check_props(body)
        if bad:
            return bad
        with self._lock:
            found = self._version(name, version)
            if isinstance(found, Reply):
                return found
            s, v = found
            if "tags" in body and body["tags"] is not None:
                v.tags = dict(body["tags"])
            if "contentType" in body:
                v.content_type = body["contentType"]
            attrs = body.get("attributes") or {}
            if "enabled" in attrs:
                v.enabled = bool(attrs["enabled"])
            for k in ("nbf", "exp"):
                if k in attrs:
                    setattr(v, k, attrs[k])
            v.updated = self.now()
            return Reply(200, self._bundle(base, s, v, value=False))

    def _page(self, base: str, path: str, items: list[dict[str, Any]], keys: list[str],
              query: Mapping[str, str]) -> Reply:
        """One page after the skiptoken (the last name of the previous page), absolute nextLink."""
        try:
            size = int(query.get("maxresults", PAGE_MAX))
        except ValueError:
            return error(400, "BadParameter", "maxresults must be an integer.")
        if not 1 <= size <= PAGE_MAX:
            return error(400, "BadParameter", f"maxresults must be between 1 and {PAGE_MAX}.")
        start = 0
        token = query.get("$skiptoken")
        if token:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except ValueError:
                return error(400, "BadParameter", "The skiptoken is invalid.")
            start = next((i for i, k in enumerate(keys) if k > after), len(keys))
        chunk = items[start : start + size]
        next_link = None
        if start + size < len(items):
            after = base64.urlsafe_b64encode(keys[start + size - 1].encode()).decode()
            api = query.get("api-version", "7.6")
            next_link = f"{base}{path}?api-version={api}&$skiptoken={after}&maxresults={size}"
        return Reply(200, {"value": chunk, "nextLink": next_link})

    def list(self, base: str, query: Mapping[str, str]) -> Reply:
        with self._lock:
            keys = sorted(self._active)
            items = [self._item(base, self._active[k], self._active[k].latest) for k in keys]
        return self._page(base, "/secrets", items, keys, query)

    def versions(self, base: str, name: str, query: Mapping[str, str]) -> Reply:
        with self._lock:
            s = self._active.get(name.lower())
            if s is None:
                return not_found(name)
            keys = [f"{i:08d}" for i in range(len(s.versions))]
            items = [self._item(base, s, v, versioned=True) for v in s.versions]
        return self._page(base, f"/secrets/{s.name}/versions", items, keys, query)

    def delete(self, base: str, name: str) -> Reply:
        with self._lock:
            s = self._active.pop(name.lower(), None)
            if s is None:
                return not_found(name)
            body = self._bundle(base, s, s.latest, value=False)
            if self.soft_delete:
                s.deleted_date = self.now()
                self._deleted[name.lower()] = s
                body.update(self._deleted_fields(base, s))
            return Reply(200, body)

    # -- deleted secrets -----------------------------------------------------------------------
    def deleted_list(self, base: str, query: Mapping[str, str]) -> Reply:
        with self._lock:
            keys = sorted(self._deleted)
            items = []
            for k in keys:
                s = self._deleted[k]
                item = self._item(base, s, s.latest)
                item.update(self._deleted_fields(base, s))
                items.append(item)
        return self._page(base, "/deletedsecrets", items, keys, query)

    def deleted_get(self, base: str, name: str) -> Reply:
        with self._lock:
            s = self._deleted.get(name.lower())
            if s is None:
                return not_found(name, deleted=True)
            body = self._bundle(base, s, s.latest, value=False)
            body.update(self._deleted_fields(base, s))
            return Reply(200, body)

    def recover(self, base: str, name: str) -> Reply:
        with self._lock:
            s = self._deleted.pop(name.lower(), None)
            if s is None:
                return not_found(name, deleted=True)
            s.deleted_date = None
            self._active[name.lower()] = s
            return Reply(200, self._bundle(base, s, s.latest, value=False))

    def purge(self, name: str) -> Reply:
        with self._lock:
            if name.lower() not in self._deleted:
                return not_found(name, deleted=True)
            if self.purge_protection:
                return error(403, "Forbidden", f"Operation \"purge\" is not allowed because purge protection "
                             f"is enabled for this vault. Key Vault service will automatically purge it after "
                             f"the retention period has passed. Secret: {name}")
            del self._deleted[name.lower()]
            return Reply(204)

    # -- direct access for tests ---------------------------------------------------------------
    def value(self, name: str) -> str | None:
        with self._lock:
            s = self._active.get(name.lower())
            return s.latest.value if s else None

    def names(self, deleted: bool = False) -> set[str]:
        with self._lock:
            return {s.name for s in (self._deleted if deleted else self._active).values()}

    def version_count(self, name: str) -> int:
        with self._lock:
            s = self._active.get(name.lower()) or self._deleted.get(name.lower())
            return len(s.versions) if s else 0
