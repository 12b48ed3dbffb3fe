"""The Key Vault emulator on the shared HTTPS emulator base (tests/emulators/httpserver.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tests.emulators.azure_keyvault.vault import Reply, Vault, error
from tests.emulators.httpserver import Fault, HttpsEmulator, Record

__all__ = ["API_VERSIONS", "DEFAULT_TENANT", "Fault", "HttpsEmulator", "KeyVaultEmulator", "Record"]

API_VERSIONS = frozenset({"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2016-10-01", "2025-07-01",
                          "2026-04-01"})
DEFAULT_TENANT = "emulator-tenant"


class KeyVaultEmulator(HttpsEmulator):
    """The Key Vault secrets data plane over HTTPS (protocols.md §3)."""

    def __init__(self, ca: Any, *, port: int = 0, tenant: str = DEFAULT_TENANT, vault: Vault | None = None,
                 token_check: Callable[[str], bool] | None = None) -> None:
        super().__init__(ca, port=port)
        self.tenant = tenant
        self.vault = vault or Vault()
        #: None accepts any bearer token; else only tokens it approves (e.g. the fake IdP's)
        self.token_check = token_check

    def reset(self) -> None:
        self.vault.reset()
        self.clear()

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return {"error": {"code": "Throttled", "message": "Request was not processed because too many "
                              "requests were received. Reason: VaultRequestTypeLimitReached"}}
        if status >= 500:
            return {"error": {"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}}
        return super().fault_body(status)

    def response_headers(self) -> dict[str, str]:
        return {"x-ms-keyvault-service-version": "1.9.0.0"}

    def authorize(self, method: str, path: str, headers: Mapping[str, str]) -> Reply | None:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token and (self.token_check is None or self.token_check(token)):
            return None
        message = ("AKV10000: Request is missing a Bearer or PoP token." if not token
                   else "AKV10032: Invalid issuer. Expected one of the registered token issuers.")
        reply = error(401, "Unauthorized", message)
        reply.headers["WWW-Authenticate"] = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", '
            'resource="https://vault.azure.net"')
        return reply

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        api = query.get("api-version")
        if not api:
            return error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if api not in API_VERSIONS:
            return error(400, "BadParameter", f"The specified version ({api}) is not recognized. "
                         "Consider using the latest supported version (2025-07-01).")
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return error(400, "BadParameter", "The request body is not valid JSON.")
        host = headers.get("host", f"127.0.0.1:{self.port}")
        return self._route(method, path, query, parsed, f"https://{host}")

    def _route(self, method: str, path: str, query: dict[str, str], body: Any, base: str) -> Reply:
        v = self.vault
        seg = path.strip("/").split("/") if path.strip("/") else []
        trailing = path.endswith("/")  # the SDK's "latest version" form: /secrets/{name}/
        if seg[:1] == ["secrets"]:
            if len(seg) == 1 and method == "GET":
                return v.list(base, query)
            if len(seg) == 2 and method == "PUT" and not trailing:
                return v.set(base, seg[1], body)
            if len(seg) == 2 and method == "DELETE" and not trailing:
                return v.delete(base, seg[1])
            if len(seg) == 3 and seg[2] == "versions" and method == "GET":
                return v.versions(base, seg[1], query)
            if len(seg) in (2, 3) and method in ("GET", "PATCH"):
                version = seg[2] if len(seg) == 3 else ""
                return v.get(base, seg[1], version) if method == "GET" else v.update(base, seg[1], version, body)
        if seg[:1] == ["deletedsecrets"]:
            if len(seg) == 1 and method == "GET":
                return v.deleted_list(base, query)
            if len(seg) == 2 and method == "GET":
                return v.deleted_get(base, seg[1])
            if len(seg) == 2 and method == "DELETE":
                return v.purge(seg[1])
            if len(seg) == 3 and seg[2] == "recover" and method == "POST":
                return v.recover(base, seg[1])
        return error(404, "NotFound", f"The requested resource {method} {path} was not found.")
