"""The Hanzo KMS source: one folder of an Infisical-compatible API, as a sync sees it.

Reading follows upstream's sync engine (shared/reference/upstream-infisical.md §1, §5): the
folder's own secrets, references expanded by the server, imported folders merged in with
local keys winning and a later import beating an earlier one. Writing (imports) goes
through the batch endpoints so a folder is written in at most two calls, and a failure
after the first is rolled back, or said precisely (keys, never values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.errors import ConfigError
from reconciler.model import ConnectionInfo, SecretValue, SourceSecret, frozen_map
from reconciler.sources.base import Folder, content_token
from reconciler.sources.errors import SourceError
from reconciler.sources.kms_client import DEFAULT_SITE_URL, TOKENS, KmsClient, KmsError

SECRETS_PATH = "/api/v4/secrets"
BATCH_PATH = "/api/v4/secrets/batch"
#: keys named in one error message at most
_SHOWN = 10


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _keys(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


class KmsSource:
    """Reads (and, for imports, writes) folders of one KMS site as one identity."""

    def __init__(self, client: KmsClient, *, name: str = "kms", writable: bool = True) -> None:
        self.client = client
        self.name = name
        self.writable = writable

    def __repr__(self) -> str:
        return f"KmsSource({self.name!r}, {self.client.site_url!r})"

    # -- read ----------------------------------------------------------------------------------
    def _where(self, folder: Folder) -> str:
        return f"source {self.name} (kms project {folder.project_id}, {folder.environment}:{folder.secret_path})"

    def _project(self, folder: Folder) -> str:
        if not folder.project_id:
            raise SourceError(f"source {self.name} ({folder.environment}:{folder.secret_path}): no projectId")
        return folder.project_id

    def _list(self, folder: Folder, *, imports: bool, values: bool, recursive: bool) -> dict[str, Any]:
        params = {
            "projectId": self._project(folder),
            "environment": folder.environment,
            "secretPath": folder.secret_path,
            "viewSecretValue": _flag(values),
            "expandSecretReferences": _flag(values),
            "include_imports": _flag(imports),
            "recursive": _flag(recursive),
        }
        try:
            data = self.client.request("GET", SECRETS_PATH, params=params)
        except KmsError as e:
            raise SourceError(f"{self._where(folder)}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("secrets"), list):
            raise SourceError(f"{self._where(folder)}: the secrets list response has no 'secrets' list")
        return data

    def read(self, folder: Folder) -> list[SourceSecret]:
        """The folder's secrets with imports merged (local wins; the later import wins)."""
        data = self._list(folder, imports=True, values=True, recursive=folder.recursive)
        merged: dict[str, SourceSecret] = {}
        origin: dict[str, str] = {}
        for raw in data["secrets"]:
            secret, path = self._secret(folder, raw)
            if secret is None:
                continue
            if secret.key in merged:
                raise SourceError(
                    f"{self._where(folder)}: secret key {secret.key} is in both {origin[secret.key]} and {path}; "
                    "a recursive read needs unique keys across the folders it reads")
            merged[secret.key], origin[secret.key] = secret, path
        imports = data.get("imports") or []
        if not isinstance(imports, list):
            raise SourceError(f"{self._where(folder)}: the 'imports' of the secrets list is not a list")
        for imp in reversed(imports):  # upstream: last to first, set if absent
            secrets = imp.get("secrets") if isinstance(imp, dict) else None
            if not isinstance(secrets, list):
                raise SourceError(f"{self._where(folder)}: an imported folder in the response has no 'secrets'")
            for raw in secrets:
                secret, _ = self._secret(folder, raw)
                if secret is not None and secret.key not in merged:
                    merged[secret.key] = secret
        return list(merged.values())

    def _secret(self, folder: Folder, raw: Any) -> tuple[SourceSecret | None, str]:
        if not isinstance(raw, dict) or not isinstance(raw.get("secretKey"), str):
            raise SourceError(f"{self._where(folder)}: a secret in the response has no secretKey")
        key: str = raw["secretKey"]
        given = raw.get("secretPath")
        path: str = given if isinstance(given, str) else folder.secret_path
        if raw.get("type", "shared") != "shared":
            return None, path  # a personal override is one user's, never the team's
        if raw.get("secretValueHidden") is True:
            raise SourceError(
                f"{self._where(folder)}: the identity may not read the value of {key} (secretValueHidden); "
                "give it read access to values, or nothing can be synced")
        value = raw.get("secretValue")
        if not isinstance(value, str):
            raise SourceError(f"{self._where(folder)}: {key} has no value in the response")
        comment = raw.get("secretComment") if isinstance(raw.get("secretComment"), str) else ""
        metadata: dict[str, str] = {}
        for m in raw.get("secretMetadata") or []:
            if isinstance(m, dict) and isinstance(m.get("key"), str) and isinstance(m.get("value"), str):
                metadata[m["key"]] = m["value"]
        return SourceSecret(key, SecretValue(value), comment or "", frozen_map(metadata)), path

    def change_token(self, folder: Folder) -> str:
        """One list call. The API has no folder version or ETag, and a reference or an import
        can change a value without touching this folder's own secrets, so the token is a keyed
        digest of exactly what :meth:`read` returns."""
        return content_token(self.read(folder))

    # -- write ----------------------------------------------------------------------------------
    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        """Create or overwrite keys in the folder itself (never in an imported folder).

        One batch create, then one batch update. If the update fails, the keys just created
        are deleted again, so the folder is as it was; if even that fails, the error names
        every key left behind. A write is reported only once the server kept each value as
        sent: it trims leading and trailing spaces, and under a change policy it may open an
        approval request instead of writing.
        """
        if not updates:
            return
        where = self._where(folder)
        if folder.recursive:
            raise SourceError(f"{where}: a recursive sync cannot import (which sub-folder would a key go to?)")
        trimmed = sorted(k for k, v in updates.items() if v.reveal() != v.reveal().strip(" "))
        if trimmed:
            raise SourceError(
                f"{where}: import wrote nothing: the values of {_keys(trimmed)} begin or end with spaces, which the "
                "KMS server trims, so they would not be kept as they are; remove the spaces at the destination "
                "(or store the value in KMS by hand)")
        existing = {str(s.get("secretKey")) for s in
                    self._list(folder, imports=False, values=False, recursive=False)["secrets"]
                    if isinstance(s, dict) and s.get("type", "shared") == "shared"}
        create = sorted(k for k in updates if k not in existing)
        update = sorted(k for k in updates if k in existing)
        body = {"projectId": self._project(folder), "environment": folder.environment,
                "secretPath": folder.secret_path}
        if create:
            try:
                answer = self.client.request("POST", BATCH_PATH, unsafe=True, json={
                    **body, "secrets": [{"secretKey": k, "secretValue": updates[k].reveal()} for k in create]})
            except KmsError as e:
                # an answered batch is all or nothing; only a lost answer leaves us guessing
                landed = self._present(folder, create) if e.status is None else []
                if landed:
                    self._rollback(folder, body, landed, f"{where}: creating {_keys(create)} failed ({e})")
                raise SourceError(f"{where}: import wrote nothing: creating {_keys(create)} failed ({e})") from None
            self._check_answer(folder, answer, create, updates, done=[])
        if update:
            try:
                answer = self.client.request("PATCH", BATCH_PATH, json={
                    **body, "mode": "failOnNotFound",
                    "secrets": [{"secretKey": k, "secretValue": updates[k].reveal()} for k in update]})
            except KmsError as e:
                what = f"{where}: updating {_keys(update)} failed ({e})"
                if create:
                    self._rollback(folder, body, create, what)
                raise SourceError(f"{what}; nothing was written") from None
            self._check_answer(folder, answer, update, updates, done=create)

    def _check_answer(self, folder: Folder, answer: Any, keys: list[str], updates: Mapping[str, SecretValue],
                      *, done: list[str]) -> None:
        """A batch answer is a write only if it says so: an approval request wrote nothing yet,
        and a value echoed back differently was not kept."""
        where = self._where(folder)
        before = f"; {_keys(done)} were written before" if done else ""
        if isinstance(answer, dict) and "approval" in answer:
            raise SourceError(
                f"{where}: import pending approval: a change policy protects environment {folder.environment}, "
                f"so KMS opened an approval request for {_keys(keys)} instead of writing them{before}; "
                "once it is approved, run the import again")
        echoed = answer.get("secrets") if isinstance(answer, dict) else None
        if not isinstance(echoed, list):
            return
        changed = sorted({s["secretKey"] for s in echoed if isinstance(s, dict) and s.get("secretKey") in updates
                          and isinstance(s.get("secretValue"), str) and not s.get("secretValueHidden")
                          and s["secretValue"] != updates[s["secretKey"]].reveal()})
        if changed:
            raise SourceError(
                f"{where}: import incomplete: KMS stored {_keys(changed)} with a value different from the one "
                f"written (the server changed it){before}; fix the value in KMS or at the destination")

    def _present(self, folder: Folder, keys: list[str]) -> list[str]:
        """Which of ``keys`` exist now (after a create whose outcome is unknown)."""
        try:
            listed = self._list(folder, imports=False, values=False, recursive=False)["secrets"]
        except SourceError:
            return keys  # cannot tell: assume the worst, so the rollback is attempted
        names = {s.get("secretKey") for s in listed if isinstance(s, dict)}
        return [k for k in keys if k in names]

    def _rollback(self, folder: Folder, body: Mapping[str, str], keys: list[str], what: str) -> None:
        try:
            self.client.request("DELETE", BATCH_PATH, json={
                **body, "secrets": [{"secretKey": k} for k in keys]})
        except KmsError as e:
            raise SourceError(
                f"{what}; rolling back failed too ({e}): created {_keys(keys)} remain in the folder, "
                "with the destination's values; nothing else was written") from None

    def close(self) -> None:
        self.client.close()


def open_kms(
    name: str,
    settings: Mapping[str, Any],
    client_id: str,
    client_secret: SecretValue,
    **client_options: Any,
) -> KmsSource:
    """A source for one Connection (settings as loaded: caBundle already absolute)."""
    site = settings.get("siteUrl") or DEFAULT_SITE_URL
    ca = settings.get("caBundle")
    client_options.setdefault("token_cache", TOKENS)
    client = KmsClient(str(site), client_id, client_secret, ca_bundle=str(ca) if ca else None, **client_options)
    return KmsSource(client, name=name, writable=bool(settings.get("writable", True)))


def open_connection(conn: ConnectionInfo) -> KmsSource:
    """The catalog's opener: a universal-auth identity (client id and secret) on one site."""
    client_id, client_secret = conn.credentials.get("clientId"), conn.credentials.get("clientSecret")
    if conn.method != "universal-auth" or not isinstance(client_secret, SecretValue) or client_id is None:
        raise ConfigError(f"connection {conn.name}: kms needs credentials.method universal-auth "
                          "with clientId and clientSecret")
    plain_id = client_id.reveal() if isinstance(client_id, SecretValue) else client_id
    return open_kms(conn.name, conn.settings, plain_id, client_secret)
