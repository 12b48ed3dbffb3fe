"""The data model of the KMS emulator: projects, environments, folders, imports, references.

Kept apart from the HTTP layer so tests can seed and inspect it directly. Semantics follow
shared/reference/upstream-infisical.md §5: the list returns a folder's own secrets (with
``secretPath``), its imports separately in import order, and expands ``${KEY}`` (same folder)
and ``${env.a.b.KEY}`` (environment ``env``, folder ``/a/b``) when asked to.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

REFERENCE = re.compile(r"\$\{([^}]+)\}")
#: upstream stops expanding nested references after a few levels
MAX_REFERENCE_DEPTH = 5
_ids = itertools.count(1)


class StoreError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Secret:
    key: str
    value: str
    comment: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    type: str = "shared"
    version: int = 1
    id: str = field(default_factory=lambda: f"sec-{next(_ids)}")


@dataclass
class FolderData:
    secrets: dict[str, Secret] = field(default_factory=dict)
    #: (environment, secretPath) of imported folders, in import order
    imports: list[tuple[str, str]] = field(default_factory=list)
    id: str = field(default_factory=lambda: f"fld-{next(_ids)}")


def norm(path: str) -> str:
    return "/" + path.strip().strip("/")


class Store:
    """Thread-safe: the emulator serves requests on several threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: project -> environment -> folder path -> folder
        self.projects: dict[str, dict[str, dict[str, FolderData]]] = {}

    # -- seeding / inspection (tests) ------------------------------------------------------------
    def folder(self, project: str, env: str, path: str, *, create: bool = True) -> FolderData:
        with self.lock:
            envs = self.projects.setdefault(project, {}) if create else self.projects.get(project)
            if envs is None:
                raise StoreError(404, "project not found")
            folders = envs.setdefault(env, {"/": FolderData()}) if create else envs.get(env)
            if folders is None:
                raise StoreError(404, "environment not found")
            path = norm(path)
            if path not in folders:
                if not create:
                    raise StoreError(404, "folder not found")
                parts = [p for p in path.split("/") if p]
                for i in range(1, len(parts) + 1):  # parents exist, as in a real folder tree
                    folders.setdefault("/" + "/".join(parts[:i]), FolderData())
            return folders[path]

    def put(self, project: str, env: str, path: str, key: str, value: str, *, comment: str = "",
            metadata: dict[str, str] | None = None, type: str = "shared") -> None:
        with self.lock:
            f = self.folder(project, env, path)
            old = f.secrets.get(key)
            if old is not None and old.type == type:
                old.value, old.version = value, old.version + 1
                old.comment, old.metadata = comment, dict(metadata or {})
            else:
                f.secrets[key] = Secret(key, value, comment, dict(metadata or {}), type)

    def delete(self, project: str, env: str, path: str, key: str) -> None:
        with self.lock:
            self.folder(project, env, path).secrets.pop(key, None)

    def add_import(self, project: str, env: str, path: str, from_env: str, from_path: str) -> None:
        with self.lock:
            self.folder(project, from_env, from_path)
            self.folder(project, env, path).imports.append((from_env, norm(from_path)))

    def values(self, project: str, env: str, path: str) -> dict[str, str]:
        with self.lock:
            return {k: s.value for k, s in self.folder(project, env, path).secrets.items()}

    # -- the list endpoint -----------------------------------------------------------------------
    def _folders_under(self, project: str, env: str, path: str, recursive: bool) -> list[tuple[str, FolderData]]:
        folders = self.projects[project][env]
        if not recursive:
            return [(path, folders[path])] if path in folders else []
        prefix = "/" if path == "/" else path + "/"
        return sorted((p, f) for p, f in folders.items() if p == path or p.startswith(prefix))

    def _resolve(self, project: str, env: str, path: str, value: str, depth: int = 0) -> str:
        if depth >= MAX_REFERENCE_DEPTH:
            return value

        def one(m: re.Match[str]) -> str:
            parts = m.group(1).split(".")
            if len(parts) == 1:
                r_env, r_path, r_key = env, path, parts[0]
            else:
                r_env, r_path, r_key = parts[0], norm("/".join(parts[1:-1])), parts[-1]
            folder = self.projects.get(project, {}).get(r_env, {}).get(r_path)
            target = folder.secrets.get(r_key) if folder else None
            if target is None:
                return ""  # an unresolvable reference expands to nothing
            return self._resolve(project, r_env, r_path, target.value, depth + 1)

        return REFERENCE.sub(one, value)

    def _render(self, project: str, env: str, path: str, s: Secret, expand: bool, view: bool) -> dict[str, Any]:
        value = self._resolve(project, env, path, s.value) if expand else s.value
        metadata = [{"key": k, "value": v} for k, v in s.metadata.items()]
        return {
            "id": s.id, "_id": s.id, "workspace": project, "environment": env, "version": s.version,
            "type": s.type, "secretKey": s.key, "secretValue": value if view else "<hidden-by-infisical>",
            "secretValueHidden": not view, "secretComment": s.comment, "secretPath": path,
            "secretMetadata": metadata, "metadata": metadata, "tags": [], "skipMultilineEncoding": False,
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        }

    def list_secrets(self, project: str, env: str, path: str, *, expand: bool, imports: bool, recursive: bool,
             view: bool = True) -> dict[str, Any]:
        with self.lock:
            if project not in self.projects:
                raise StoreError(404, "Project not found")
            if env not in self.projects[project]:
                return {"secrets": [], "imports": []}  # as the real server: no 404 for an environment
            path = norm(path)
            out: dict[str, Any] = {"secrets": []}
            chosen = self._folders_under(project, env, path, recursive)
            for p, f in chosen:
                out["secrets"] += [self._render(project, env, p, s, expand, view) for s in f.secrets.values()]
            if imports:
                out["imports"] = []
                for _, f in chosen:
                    for i_env, i_path in f.imports:
                        src = self.projects[project].get(i_env, {}).get(i_path)
                        if src is None:
                            continue
                        out["imports"].append({
                            "secretPath": i_path, "environment": i_env, "folderId": src.id,
                            "secrets": [self._render(project, i_env, i_path, s, expand, view)
                                        for s in src.secrets.values()],
                        })
            return out

    # -- batch writes (transactional, as upstream's batch endpoints) -----------------------------
    def batch(self, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            project, env = body.get("projectId") or body["workspaceId"], body["environment"]
            path, items = norm(body.get("secretPath") or "/"), body["secrets"]
            keys = [i["secretKey"] for i in items]
        except (KeyError, TypeError):
            raise StoreError(400, "invalid request body") from None
        with self.lock:
            f = self.folder(project, env, path, create=False)
            present = [k for k in keys if k in f.secrets]
            if method == "POST" and present:
                raise StoreError(400, f"secret already exists: {', '.join(present)}")
            if method in ("PATCH", "DELETE") and len(present) != len(keys):
                raise StoreError(404, "secret not found")
            if len(set(keys)) != len(keys):
                raise StoreError(400, "duplicate secret keys")
            done = []
            for item in items:
                key = item["secretKey"]
                if method == "DELETE":
                    done.append(self._render(project, env, path, f.secrets.pop(key), False, False))
                    continue
                meta = {m["key"]: m["value"] for m in item.get("secretMetadata") or []}
                # the real server trims leading and trailing spaces (a trailing newline stays)
                if method == "POST":
                    value = str(item["secretValue"]).strip(" ")
                    f.secrets[key] = Secret(key, value, item.get("secretComment") or "", meta)
                else:
                    s = f.secrets[key]
                    s.value, s.version = str(item.get("secretValue", s.value)).strip(" "), s.version + 1
                    if "secretComment" in item:
                        s.comment = item["secretComment"]
                # and it echoes the stored plaintext in the answer (never log these bodies)
                done.append(self._render(project, env, path, f.secrets[key], False, True))
            return done
