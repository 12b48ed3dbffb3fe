"""Azure DevOps destination: one variable group of one project per sync.

Cost: a no-op reconcile is one GET (the project's groups filtered by name); an apply with
changes reads the group again, right before writing it under a per-group lock, and makes
exactly one write -- a full-replace PUT (a POST when it does not exist yet, a DELETE when
nothing would remain: a group cannot be empty). Upstream PUTs the whole group every sync.

Values are write-only: the service returns ``null`` for a secret. So a variable's version
marker says who last wrote the group: ``by:<identity>``. Every write of ours leaves our own
identity there, so the variables we keep untouched in a partial write stay vouched for, and
a sync's next plan is empty; anyone else's edit (in the web UI, another tool's PAT) moves
every marker and the plan rewrites what we own. A variable made non-secret gets a marker
that never matches, so it is rewritten as a secret. What this cannot see: an edit made with
the very identity reconciler uses (see docs/destinations/azure-devops.md).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Sequence

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import errors
from reconciler.destinations.azure_devops import rules
from reconciler.destinations.azure_devops.client import DevOpsClient, authorization, organization_url
from reconciler.destinations.azure_devops.group import PLAIN_TYPE, Group, body, merged, project_ref
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope
from reconciler.errors import ReconcilerError
from reconciler.model import ObservedEntry, SecretValue

__all__ = ["AzureDevOpsVariableGroup"]


#: one writer per variable group in this process: two syncs on one group (disjoint scopes)
#: run concurrently in the daemon, and a full-replace PUT built from a stale read would
#: silently undo the other's write (the service has no ETag)
_GROUP_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_GUARD = threading.Lock()


_WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE})


def _group_lock(key: tuple[str, str, str]) -> threading.Lock:
    with _GUARD:
        return _GROUP_LOCKS.setdefault(key, threading.Lock())


def marker(group: Group, secret: bool = True) -> str:
    """A variable's version: who last wrote the group (a plain variable never matches)."""
    return f"by:{group.modified_by}" if secret else f"plain:{group.modified_on}"


class AzureDevOpsVariableGroup:
    """A session on one project's variable group for one sync."""

    def __init__(self, view: SyncView, connection: ConnectionInfo) -> None:
        cfg = view.destination_config
        self._project_id = str(cfg.get("devopsProjectId") or "")
        if not rules.GUID.match(self._project_id):
            raise errors.ConfigError("devopsProjectId must be the project's ID (a GUID)")
        self._project_name = str(cfg.get("devopsProjectName") or "") or None
        self._group_name = rules.group_name(view)
        self._description = f"Secrets synced by reconciler (sync {view.sync})"
        settings = connection.settings
        ca = settings.get("caBundle")
        org = organization_url(settings)
        self._client = DevOpsClient(org, authorization(connection.method, connection.secret, settings),
                                    ca_bundle=str(ca) if ca else None)
        self._lock = _group_lock((org.lower(), self._project_id.lower(), self._group_name.lower()))

    @property
    def client(self) -> DevOpsClient:
        return self._client

    # -- observation -----------------------------------------------------------------------
    def list(self, scope: Scope) -> builtins.list[ObservedEntry]:
        """Every variable of the group (the planner keeps those in scope); one request.
        Nothing in a variable group is ever pending deletion, so a ``pending_only`` ask is
        answered without one."""
        if scope.pending_only:
            return []
        group = self._fetch()
        if group is None:
            return []
        return [ObservedEntry(key=v.name, version=marker(group, v.secret)) for v in group.variables.values()]

    def _fetch(self) -> Group | None:
        raw = self._client.find_group(self._project_id, self._group_name)
        if raw is None:
            return None
        group = Group.parse(raw)
        if group.type != PLAIN_TYPE:
            raise errors.Permanent(f"variable group '{group.name}' is of type {group.type} (linked to a vault); "
                                   "reconciler writes only plain variable groups")
        return group

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """Nothing: Azure DevOps never returns a secret's value (the planner rewrites what it
        cannot vouch for)."""
        return {}

    # -- apply -----------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """All changes in one write of the group, then every change reported with the
        group's new marker (or the one error, for each)."""
        todo = [c for c in changes if c.action in _WRITES]
        for c in changes:
            if c.action not in _WRITES and c.action is not Action.IMPORT:  # imports go to the source
                on_result(ChangeResult(c, False, error=f"{c.action.value} is not something Azure DevOps has"))
        if not todo:
            return
        writes = {c.key: c.value for c in todo
                  if c.action is not Action.DELETE and c.value is not None and c.value_changed}
        deletes = [c.key for c in todo if c.action is Action.DELETE]
        try:
            version = self._write(writes, deletes)
        except ReconcilerError as exc:
            for c in todo:
                on_result(ChangeResult(c, False, error=str(exc), retry_after=exc.retry_after))
            return
        for c in todo:
            on_result(ChangeResult(c, True, version=None if c.action is Action.DELETE else version))

    def _write(self, writes: dict[str, SecretValue], deletes: builtins.list[str]) -> str | None:
        """Read the group afresh and write it, holding the group's lock: what goes back is
        what is there now, not what the plan saw (another sync may have written since)."""
        with self._lock:
            return self._write_locked(self._fetch(), writes, deletes)

    def _write_locked(self, group: Group | None, writes: dict[str, SecretValue],
                      deletes: builtins.list[str]) -> str | None:
        ref = project_ref(self._group_name, self._description, self._project_id, self._project_name)
        if group is None:
            if not writes:
                return None  # nothing to create, and the deletes are gone already
            created = self._client.add_group(body(self._group_name, self._description, merged(None, writes, []),
                                                  [ref]), self._project_id)
            return marker(Group.parse(created))
        variables = merged(group, writes, deletes)
        if not variables:
            # a group cannot be empty; everything left in it was ours: delete it wherever it is shared
            projects = [str((r.get("projectReference") or {}).get("id") or "") for r in group.project_refs]
            self._client.delete_group(group.id, ",".join(p for p in projects if p) or self._project_id)
            return None
        updated = self._client.update_group(group.id, body(group.name, group.description, variables,
                                                           group.project_refs or [ref], group.type))
        return marker(Group.parse(updated))

    def close(self) -> None:
        self._client.close()
