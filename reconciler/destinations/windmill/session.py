"""Windmill workspace variables: the session (list, read, apply) on the REST transport.

Cost of a no-change reconcile with warm state: ⌈V/100⌉ list pages (V = variables whose path
starts with the sync's folder) and nothing else: a list row carries ``edited_at``, our
version marker, so a value is read (``get_value``) only for a variable edited since our
last write. Upstream calls ``get_value`` for every secret variable on every sync.

Our own writes answer with text only, so after an apply one listing of the scope learns
the new ``edited_at`` of what we wrote (⌈V/100⌉ calls, not one read per write), and the
results are reported with it. A variable edited by someone else between our write and that
listing would be recorded as ours: the window is one listing long.
"""

from __future__ import annotations

import builtins
import contextvars
import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import errors
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope, apply_by_key, header_secret
from reconciler.destinations.windmill import client as wm_client
from reconciler.destinations.windmill.client import WindmillHttp
from reconciler.destinations.windmill.rules import DESCRIPTION, SECRET
from reconciler.logging import get_logger
from reconciler.model import ObservedEntry, SecretValue, frozen_map

__all__ = ["WindmillVariables"]

PAGE_SIZE = 100  # the spec's per_page maximum

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _int_setting(settings: Mapping[str, Any], name: str, default: int) -> int:
    v = settings.get(name, default)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default


def _seconds(settings: Mapping[str, Any], name: str, default: float) -> float:
    v = settings.get(name)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else default


class WindmillVariables:
    """A session on one Windmill workspace for one sync."""

    def __init__(self, view: SyncView, connection: ConnectionInfo) -> None:
        cfg, settings = view.destination_config, connection.settings
        ca = settings.get("caBundle")
        self._http = WindmillHttp(
            str(settings["instanceUrl"]) if settings.get("instanceUrl") else None,
            str(cfg.get("workspace") or "").strip(), header_secret(connection, "token"),
            ca_bundle=str(ca) if ca else None, attempts=_int_setting(settings, "maxAttempts", 5),
            timeout=_seconds(settings, "readTimeout", 30.0), connect_timeout=_seconds(settings, "connectTimeout", 10.0))
        self._workers = _int_setting(settings, "maxConcurrency", 8)

    @property
    def http(self) -> WindmillHttp:
        return self._http

    # -- observation -----------------------------------------------------------------------
    def _rows(self, prefix: str) -> builtins.list[Mapping[str, Any]]:
        """Every list page under ``prefix`` (``page``/``per_page`` until a short page)."""
        rows: builtins.list[Mapping[str, Any]] = []
        page, first = 1, None
        while True:
            params: dict[str, Any] = {"page": page, "per_page": PAGE_SIZE}
            if prefix:
                params["path_start"] = prefix
            reply = self._http.call("GET", "list", "list", answer=builtins.list, params=params)
            chunk = [r for r in reply.body if isinstance(r, Mapping)]
            if chunk and page > 1 and chunk[0].get("path") == first:
                # a server (or proxy) that ignores `page` would otherwise be listed forever
                raise errors.Permanent("list failed: Windmill answered the same page twice (it ignores `page`)")
            first = chunk[0].get("path") if chunk else None
            rows += chunk
            if len(chunk) < PAGE_SIZE:
                return rows
            page += 1

    def list(self, scope: Scope) -> builtins.list[ObservedEntry]:
        """The variables in scope. ``path_start`` is a SQL LIKE pattern on the server ('_'
        matches any character), and reaches into sub-folders: both are filtered out here.
        Windmill has no soft delete, so a ``pending_only`` request has nothing to find."""
        if scope.pending_only:
            return []
        prefix = scope.list_prefix
        out: builtins.list[ObservedEntry] = []
        missing_marker = False
        for row in self._rows(prefix):
            path = row.get("path")
            if not isinstance(path, str) or not path.startswith(prefix) or not scope.contains(path):
                continue
            edited = row.get("edited_at")
            missing_marker |= edited is None
            props = {DESCRIPTION: str(row.get("description") or ""),
                     SECRET: "true" if row.get("is_secret") is True else "false"}
            out.append(ObservedEntry(key=path, version=str(edited) if edited is not None else None,
                                     properties=frozen_map(props)))
        if missing_marker:
            self._warn_once()
        return out

    def _warn_once(self) -> None:
        where = f"{self._http.host}/{self._http.workspace}"
        with _warned_lock:
            first = where not in _warned
            _warned.add(where)
        if first:
            get_logger(destination=wm_client.KIND).warning(
                "windmill.no_edited_at", workspace=self._http.workspace,
                reason="this Windmill server lists variables without edited_at, so every reconcile reads "
                       "each variable's value to compare (one get_value per variable)")

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """``get_value`` per key, a few at a time; missing variables are left out."""
        wanted = list(dict.fromkeys(keys))

        def one(key: str) -> tuple[str, SecretValue | None]:
            try:
                reply = self._http.call("GET", "get_value", f"get_value/{key}", key=key, answer=str)
            except errors.NotFound:
                return key, None
            return key, SecretValue(reply.body)

        if len(wanted) <= 1 or self._workers <= 1:
            pairs = [one(k) for k in wanted]
        else:
            with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="wm-read") as pool:
                # each read runs in a copy of this context: the run's deadline follows it
                pairs = list(pool.map(lambda k: contextvars.copy_context().run(one, k), wanted))
        return {k: v for k, v in pairs if v is not None}

    # -- apply -----------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Writes with bounded concurrency, then one listing for the new ``edited_at`` of
        what was written, then every result is reported with it."""
        writes = [c for c in changes if c.action is not Action.IMPORT]  # imports go to the source
        results: builtins.list[ChangeResult] = []
        try:
            apply_by_key(writes, self._apply_one, results.append, workers=self._workers)
        finally:
            versions = self._versions([r.change.key for r in results
                                       if r.ok and r.change.action is not Action.DELETE])
            for r in results:
                v = versions.get(r.change.key)
                on_result(dataclasses.replace(r, version=v) if v is not None else r)

    def _versions(self, keys: builtins.list[str]) -> dict[str, str]:
        if not keys:
            return {}
        wanted = set(keys)
        # character by character on purpose: the longest literal all written paths start with
        prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071
        try:
            return {str(r["path"]): str(r["edited_at"]) for r in self._rows(prefix)
                    if r.get("path") in wanted and r.get("edited_at") is not None}
        except errors.DestinationError:
            return {}  # written all the same; the next run reads those values once

    def _apply_one(self, change: Change) -> ChangeResult:
        key = change.key
        if change.action is Action.DELETE:
            self._http.call("DELETE", "delete", f"delete/{key}", key=key)  # 200 even when already gone
            return ChangeResult(change=change, ok=True)
        if change.action in (Action.CREATE, Action.UPDATE):
            return self._write(change)
        raise errors.Permanent(f"Windmill variables have no {change.action.value}", key=key)

    def _write(self, change: Change) -> ChangeResult:
        key, props = change.key, change.set_properties
        if change.compare_first and change.value is not None:
            current = self.read([key]).get(key)
            if current == change.value:
                change = dataclasses.replace(change, value_changed=False)
        body: dict[str, Any] = {}
        if change.value_changed or SECRET in props:
            # Windmill changes is_secret only together with the value (the value rides along
            # on a properties-only change)
            if change.value is None:
                raise errors.Permanent("the secret flag cannot change without the value", key=key)
            body = {"value": change.value.reveal(), "is_secret": True}
        if DESCRIPTION in props:
            body[DESCRIPTION] = props[DESCRIPTION]
        elif DESCRIPTION in change.unset_properties:
            body[DESCRIPTION] = ""
        if change.action is Action.CREATE:
            if change.value is None:
                raise errors.Permanent("create without a value", key=key)
            create = {"path": key, "value": change.value.reveal(), "is_secret": True,
                      DESCRIPTION: props.get(DESCRIPTION, "")}
            reply = self._http.call("POST", "create", "create", key=key, json=create, expect=(201, 400))
            if reply.status == 201:
                return ChangeResult(change=change, ok=True, properties=frozen_map(props))
            if wm_client.classify(reply.text) != "already exists":
                raise wm_client.from_status(reply, "create", key, self._http.workspace)
            # created since the plan, or our own create landed and its answer was lost: it is
            # the variable we meant, so it gets the value and description we meant
            body = {k: v for k, v in create.items() if k != "path"}
        if body:
            self._http.call("POST", "update", f"update/{key}", key=key, json=body)
        return ChangeResult(change=change, ok=True, properties=frozen_map(props))

    def close(self) -> None:
        self._http.close()
