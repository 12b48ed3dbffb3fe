"""A fake Microsoft Entra authority: just enough for azure-identity's ClientSecretCredential
(through msal) to get a token, so the real client-secret path runs in tests and the demo.

Two endpoints (test-infrastructure.md §3): the tenant's OpenID configuration and its v2.0
token endpoint (client_credentials grant). Tokens it issues are remembered, so the Key Vault
emulator can accept only those.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from tests.emulators.azure_keyvault.server import HttpsEmulator
from tests.emulators.azure_keyvault.vault import Reply


class FakeIdentityProvider(HttpsEmulator):
    def __init__(self, ca: Any, *, port: int = 0) -> None:
        super().__init__(ca, port=port)
        #: (tenant, client_id) -> client secret
        self.clients: dict[tuple[str, str], str] = {}
        self._issued: set[str] = set()
        self._issued_lock = threading.Lock()

    def register(self, tenant: str, client_id: str, client_secret: str) -> None:
        self.clients[(tenant, client_id)] = client_secret

    def mint(self) -> str:
        """A token the vault accepts, for other token sources (the managed-identity endpoint)."""
        token = "fake-" + secrets.token_hex(16)
        with self._issued_lock:
            self._issued.add(token)
        return token

    def issued(self, token: str) -> bool:
        with self._issued_lock:
            return token in self._issued

    def reset(self) -> None:
        self.clear()

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        parts = path.strip("/").split("/")
        base = f"https://{headers.get('host', f'127.0.0.1:{self.port}')}"
        if method == "GET" and len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            tenant = parts[0]
            return Reply(200, {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{base}/{tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "response_types_supported": ["code", "id_token", "token"],
                "tenant_region_scope": "EU",
            })
        if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(parts[0], dict(parse_qsl(body.decode("utf-8", "replace"))))
        return Reply(404, {"error": "not_found", "error_description": f"no route {method} {path}"})

    def _token(self, tenant: str, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type",
                               "error_description": "AADSTS70003: The app requested an unsupported grant type."})
        expected = self.clients.get((tenant, form.get("client_id", "")))
        if expected is None or not secrets.compare_digest(expected, form.get("client_secret", "")):
            return Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided.",
                               "error_codes": [7000215]})
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                           "access_token": self.mint()})
