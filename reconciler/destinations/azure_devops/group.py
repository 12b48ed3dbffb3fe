"""A variable group as plain data, and the one body a write sends (pure, no I/O).

Why this is its own module: the service's PUT replaces the *whole* group, so the body is
where "merge, never clobber" is decided. Everything that is not one of this apply's writes
or deletes is sent back as it stands: non-secret variables with their values, secrets --
ours or anyone's -- as ``{"isSecret": true}`` with no value, which keeps the stored value
(the service never tells us what it is). Our writes go in as secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reconciler.model import SecretValue

#: the group type a plain variable group has (others are linked to a Key Vault)
PLAIN_TYPE = "Vsts"


@dataclass(frozen=True)
class Variable:
    name: str
    secret: bool
    #: a non-secret variable's value (never a secret's: the service returns null)
    value: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class Group:
    """One variable group as listed: what a write must send back and what drift is judged by."""

    id: int
    name: str
    type: str
    description: str
    modified_on: str
    modified_by: str  # the identity's id
    variables: Mapping[str, Variable] = field(default_factory=lambda: MappingProxyType({}))
    #: every project the group is shared with, as the service lists them (a PUT must keep them)
    project_refs: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Group:
        variables: dict[str, Variable] = {}
        for name, raw in (body.get("variables") or {}).items():
            raw = raw if isinstance(raw, Mapping) else {}
            secret = bool(raw.get("isSecret"))
            value = raw.get("value")
            variables[str(name)] = Variable(str(name), secret, None if secret or value is None else str(value),
                                            bool(raw.get("isReadOnly")))
        by = body.get("modifiedBy")
        refs = tuple(r for r in body.get("variableGroupProjectReferences") or [] if isinstance(r, Mapping))
        return cls(id=int(body["id"]), name=str(body.get("name") or ""), type=str(body.get("type") or PLAIN_TYPE),
                   description=str(body.get("description") or ""), modified_on=str(body.get("modifiedOn") or ""),
                   modified_by=str(by.get("id") or "") if isinstance(by, Mapping) else "",
                   variables=MappingProxyType(variables), project_refs=refs)

    @property
    def version(self) -> str:
        """What moves on every write to the group, ours or anyone's."""
        return f"{self.modified_on}|{self.modified_by}"


def merged(current: Group | None, writes: Mapping[str, SecretValue], deletes: Iterable[str]) -> dict[str, Any]:
    """The ``variables`` of the one PUT (or POST) that applies ``writes`` and ``deletes``.

    Names compare case-insensitively (as pipelines read them): a write replaces a variable
    that differs only in case, a delete removes it.
    """
    gone = {d.lower() for d in deletes} | {w.lower() for w in writes}
    out: dict[str, Any] = {}
    for name, var in (current.variables if current else {}).items():
        if name.lower() in gone:
            continue
        entry: dict[str, Any] = {"isSecret": True} if var.secret else {"value": var.value or ""}
        if var.read_only:
            entry["isReadOnly"] = True
        out[name] = entry
    for name, value in writes.items():
        out[name] = {"value": value.reveal(), "isSecret": True}
    return out


def body(name: str, description: str, variables: Mapping[str, Any], project_refs: Iterable[Mapping[str, Any]],
         group_type: str = PLAIN_TYPE) -> dict[str, Any]:
    """An add or full-replace body. ``project_refs`` must hold every project the group is in:
    a PUT without one takes the group out of that project."""
    return {"name": name, "description": description, "type": group_type, "variables": dict(variables),
            "variableGroupProjectReferences": [dict(r) for r in project_refs]}


def project_ref(group_name: str, description: str, project_id: str, project_name: str | None) -> dict[str, Any]:
    return {"name": group_name, "description": description,
            "projectReference": {"id": project_id, "name": project_name or project_id}}
