"""One Azure DevOps organization's projects and variable groups as state + operations,
written from the 7.1 REST specs (shared/reference/specs/azure-devops/) and protocols.md §2.

Pure: no sockets. Every operation returns a :class:`Reply` shaped like the service's, errors
as WrappedException bodies. What the service does that a client must cope with, kept here:
secret values are stored but never returned (``{"value": null, "isSecret": true}``); a PUT
replaces the whole group except that a secret sent without a value (or with null or "")
keeps the value it had; a group cannot have zero variables or zero project references; an
unknown group id read through a project answers 200 with ``null`` (Azure DevOps Services;
``unknown_get_404`` switches to the on-premises 404); ``modifiedOn`` moves on every write
(100 ns ticks, strictly increasing, from an injectable clock).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.emulators.httpserver import Reply

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TOP_MAX = 1000
_TYPE_NS = {
    "VariableGroupExistsException": "Microsoft.TeamFoundation.DistributedTask.WebApi",
    "VariableGroupNotFoundException": "Microsoft.TeamFoundation.DistributedTask.WebApi",
    "ProjectDoesNotExistWithNameException": "Microsoft.TeamFoundation.Core.WebApi",
    "ProjectDoesNotExistException": "Microsoft.TeamFoundation.Core.WebApi",
}


def wrapped(status: int, type_key: str, message: str, *, error_code: int = 0, event_id: int = 3000) -> Reply:
    """The service's error body (WrappedException); clients match on ``typeKey``."""
    ns = _TYPE_NS.get(type_key, "Microsoft.VisualStudio.Services.WebApi")
    return Reply(status, {"$id": "1", "innerException": None, "message": message,
                          "typeName": f"{ns}.{type_key}, {ns}", "typeKey": type_key,
                          "errorCode": error_code, "eventId": event_id})


def _missing(group_id: str) -> Reply:
    return wrapped(404, "VariableGroupNotFoundException", f"Variable group with id {group_id} does not exist.")


def bad_request(message: str, type_key: str = "ArgumentException") -> Reply:
    return wrapped(400, type_key, message)


@dataclass(frozen=True)
class Identity:
    id: str
    display_name: str
    unique_name: str

    def ref(self) -> dict[str, str]:
        return {"displayName": self.display_name, "id": self.id, "uniqueName": self.unique_name}


@dataclass
class Project:
    id: str
    name: str
    description: str = ""


@dataclass
class Variable:
    value: str
    is_secret: bool = False
    is_read_only: bool = False

    def shown(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": None if self.is_secret else self.value}
        if self.is_secret:
            out["isSecret"] = True
        if self.is_read_only:
            out["isReadOnly"] = True
        return out


@dataclass
class Group:
    id: int
    name: str
    description: str
    type: str
    variables: dict[str, Variable]
    project_ids: list[str]
    created_by: Identity
    created_on: int  # 100 ns ticks since the epoch
    modified_by: Identity
    modified_on: int
    provider_data: Any = None
    ref_names: dict[str, str] = field(default_factory=dict)  # project id -> the group's name there


def _iso(ticks: int) -> str:
    secs, frac = divmod(ticks, 10_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"


class Organization:
    """Projects and variable groups of one organization. Thread-safe (one lock)."""

    def __init__(self, name: str = "emulator-org", *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.unknown_get_404 = False
        self._clock = clock
        self.offset = 0.0  # seconds added to the clock (tests move time with it)
        self._lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        self.groups: dict[int, Group] = {}
        self._next_id = 1
        self._last_tick = 0

    # -- set-up and inspection (tests) ---------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.projects.clear()
            self.groups.clear()
            self._next_id = 1
            self._last_tick = 0
            self.offset = 0.0
            self.unknown_get_404 = False

    def add_project(self, name: str, project_id: str | None = None, description: str = "") -> Project:
        with self._lock:
            p = Project(project_id or str(uuid.uuid4()), name, description)
            self.projects[p.id] = p
            return p

    def group_named(self, project: str, name: str) -> Group | None:
        p = self.project(project)
        if p is None:
            return None
        with self._lock:
            return next((g for g in self.groups.values()
                         if p.id in g.project_ids and g.ref_names.get(p.id, g.name).lower() == name.lower()), None)

    def secret_value(self, group_id: int, name: str) -> str | None:
        """What a pipeline would see (tests only: the API never returns it)."""
        with self._lock:
            g = self.groups.get(group_id)
            v = g.variables.get(name) if g else None
            return v.value if v else None

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def _tick(self) -> int:
        now = int((self._clock() + self.offset) * 10_000_000)
        self._last_tick = max(now, self._last_tick + 1)
        return self._last_tick

    def project(self, id_or_name: str) -> Project | None:
        with self._lock:
            if id_or_name in self.projects:
                return self.projects[id_or_name]
            key = id_or_name.lower()
            return next((p for p in self.projects.values() if p.id.lower() == key or p.name.lower() == key), None)

    @staticmethod
    def _no_project(id_or_name: str) -> Reply:
        key = "ProjectDoesNotExistException" if GUID.match(id_or_name) else "ProjectDoesNotExistWithNameException"
        return wrapped(404, key, f"TF200016: The following project does not exist: {id_or_name}. Verify that the "
                       "name of the project is correct and that the project exists on the specified Azure DevOps "
                       "Server.", error_code=0)

    # -- shapes --------------------------------------------------------------------------------
    def _project_body(self, p: Project, base: str) -> dict[str, Any]:
        return {"id": p.id, "name": p.name, "description": p.description, "url": f"{base}/_apis/projects/{p.id}",
                "state": "wellFormed", "revision": 1, "visibility": "private",
                "lastUpdateTime": "2026-01-01T00:00:00.000Z"}

    def _group_body(self, g: Group) -> dict[str, Any]:
        refs = []
        for pid in g.project_ids:
            p = self.projects.get(pid)
            refs.append({"projectReference": {"id": pid, "name": p.name if p else None},
                         "name": g.ref_names.get(pid, g.name), "description": g.description})
        body: dict[str, Any] = {
            "variables": {k: v.shown() for k, v in g.variables.items()}, "id": g.id, "type": g.type,
            "name": g.name, "description": g.description, "createdBy": g.created_by.ref(),
            "createdOn": _iso(g.created_on), "modifiedBy": g.modified_by.ref(), "modifiedOn": _iso(g.modified_on),
            "isShared": len(g.project_ids) > 1, "variableGroupProjectReferences": refs,
        }
        if g.provider_data is not None:
            body["providerData"] = g.provider_data
        return body

    # -- projects ------------------------------------------------------------------------------
    def get_project(self, base: str, id_or_name: str) -> Reply:
        p = self.project(id_or_name)
        return Reply(200, self._project_body(p, base)) if p else self._no_project(id_or_name)

    def list_projects(self, base: str) -> Reply:
        with self._lock:
            items = [self._project_body(p, base) for p in sorted(self.projects.values(), key=lambda p: p.name)]
        return Reply(200, {"count": len(items), "value": items})

    # -- variable groups: reads through a project ----------------------------------------------
    def get_group(self, project: str, group_id: str) -> Reply:
        p = self.project(project)
        if p is None:
            return self._no_project(project)
        if not group_id.isdigit():
            return bad_request(f"The value '{group_id}' is not valid for groupId.")
        with self._lock:
            g = self.groups.get(int(group_id))
            if g is None or p.id not in g.project_ids:
                if self.unknown_get_404:
                    return _missing(group_id)
                return Reply(200, None)
            return Reply(200, self._group_body(g))

    def list_groups(self, project: str, query: Mapping[str, str]) -> Reply:
        p = self.project(project)
        if p is None:
            return self._no_project(project)
        order = query.get("queryOrder", "IdDescending")
        if order.lower() not in ("iddescending", "idascending"):
            return bad_request(f"The value '{order}' is not valid for queryOrder.")
        descending = order.lower() == "iddescending"
        try:
            top = int(query.get("$top") or TOP_MAX)
            token = int(query["continuationToken"]) if query.get("continuationToken") else None
            ids = ({int(x) for x in query["groupIds"].split(",") if x.strip()}
                   if "groupIds" in query else None)
        except ValueError:
            return bad_request("The value of a query parameter is not a valid integer.")
        if not 0 < top <= TOP_MAX:
            return bad_request(f"The value of $top must be between 1 and {TOP_MAX}.")
        pattern = query.get("groupName")
        with self._lock:
            found = [g for g in self.groups.values() if p.id in g.project_ids]
            if ids is not None:
                found = [g for g in found if g.id in ids]
            if pattern:
                pat = pattern.lower()
                found = [g for g in found if fnmatch.fnmatchcase(g.ref_names.get(p.id, g.name).lower(), pat)]
            found.sort(key=lambda g: g.id, reverse=descending)
            if token is not None:
                found = [g for g in found if (g.id <= token if descending else g.id >= token)]
            page, rest = found[:top], found[top:]
            items = [self._group_body(g) for g in page]
        headers = {"X-MS-ContinuationToken": str(rest[0].id)} if rest else {}
        return Reply(200, {"count": len(items), "value": items}, headers)

    # -- variable groups: organization-level writes --------------------------------------------
    def _parse(self, body: Any) -> tuple[str, list[tuple[str, str]], dict[str, dict[str, Any]]] | Reply:
        if not isinstance(body, dict):
            return bad_request("Value cannot be null.\r\nParameter name: variableGroupParameters",
                               "ArgumentNullException")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return bad_request("Value cannot be null.\r\nParameter name: variableGroup.Name", "ArgumentNullException")
        refs = body.get("variableGroupProjectReferences") or []
        if not isinstance(refs, list) or not refs:
            return bad_request("Atleast one variable group project reference is required.")
        pairs: list[tuple[str, str]] = []
        for ref in refs:
            pref = (ref or {}).get("projectReference") or {}
            pid = str(pref.get("id") or "")
            if not GUID.match(pid):
                return bad_request("Project reference id must be a valid project GUID.")
            if pid.lower() not in {p.lower() for p in self.projects}:
                return self._no_project(pid)
            canonical = next(p for p in self.projects if p.lower() == pid.lower())
            pairs.append((canonical, str((ref or {}).get("name") or name)))
        variables = body.get("variables") or {}
        if not isinstance(variables, dict) or not variables:
            return bad_request("Variable group must have at least one variable defined.")
        for k, v in variables.items():
            if not k.strip() or not isinstance(v, dict | type(None)):
                return bad_request(f"The variable '{k}' is not valid.")
        return name, pairs, {k: (v or {}) for k, v in variables.items()}

    def _conflict(self, pairs: list[tuple[str, str]], own_id: int | None) -> Reply | None:
        for pid, ref_name in pairs:
            for g in self.groups.values():
                if g.id != own_id and pid in g.project_ids and g.ref_names.get(pid, g.name).lower() == ref_name.lower():
                    return wrapped(409, "VariableGroupExistsException", f"Variable group '{ref_name}' already exists.")
        return None

    @staticmethod
    def _variables(sent: dict[str, dict[str, Any]], old: Mapping[str, Variable]) -> dict[str, Variable]:
        out: dict[str, Variable] = {}
        for k, v in sent.items():
            secret = bool(v.get("isSecret"))
            value = v.get("value")
            prev = old.get(k)
            if secret and not value and prev is not None and prev.is_secret:
                value = prev.value  # absent, null or "": the stored secret stays
            out[k] = Variable("" if value is None else str(value), secret, bool(v.get("isReadOnly")))
        return out

    def add_group(self, body: Any, who: Identity) -> Reply:
        with self._lock:
            parsed = self._parse(body)
            if isinstance(parsed, Reply):
                return parsed
            name, pairs, sent = parsed
            conflict = self._conflict(pairs, None)
            if conflict:
                return conflict
            now = self._tick()
            g = Group(self._next_id, name, str(body.get("description") or ""), str(body.get("type") or "Vsts"),
                      self._variables(sent, {}), [pid for pid, _ in pairs], who, now, who, now,
                      body.get("providerData"), dict(pairs))
            self._next_id += 1
            self.groups[g.id] = g
            return Reply(200, self._group_body(g))

    def update_group(self, group_id: str, body: Any, who: Identity) -> Reply:
        with self._lock:
            g = self.groups.get(int(group_id)) if group_id.isdigit() else None
            if g is None:
                return _missing(group_id)
            parsed = self._parse(body)
            if isinstance(parsed, Reply):
                return parsed
            name, pairs, sent = parsed
            conflict = self._conflict(pairs, g.id)
            if conflict:
                return conflict
            g.name, g.description = name, str(body.get("description") or "")
            g.type = str(body.get("type") or g.type)
            g.variables = self._variables(sent, g.variables)
            g.project_ids, g.ref_names = [pid for pid, _ in pairs], dict(pairs)
            g.provider_data = body.get("providerData", g.provider_data)
            g.modified_by, g.modified_on = who, self._tick()
            return Reply(200, self._group_body(g))

    def delete_group(self, group_id: str, project_ids: str | None) -> Reply:
        if not project_ids:
            return bad_request("Value cannot be null.\r\nParameter name: projectIds", "ArgumentNullException")
        ids = [x.strip() for x in project_ids.split(",") if x.strip()]
        bad = next((x for x in ids if not GUID.match(x)), None)
        if bad is not None:
            return bad_request(f"The value '{bad}' is not a valid Guid.")
        with self._lock:
            g = self.groups.get(int(group_id)) if group_id.isdigit() else None
            if g is None:
                return _missing(group_id)
            drop = {x.lower() for x in ids}
            g.project_ids = [pid for pid in g.project_ids if pid.lower() not in drop]
            g.ref_names = {pid: n for pid, n in g.ref_names.items() if pid in g.project_ids}
            if not g.project_ids:
                del self.groups[g.id]
            return Reply(204)
