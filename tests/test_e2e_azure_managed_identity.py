"""The managed-identity path for real: azure-identity's ManagedIdentityCredential gets its
token from an App Service-style identity endpoint on 127.0.0.1 (IDENTITY_ENDPOINT and
IDENTITY_HEADER, as Azure sets them), and the vault accepts only tokens the fake identity
provider minted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.emulators.azure_keyvault import FakeIdentityProvider, KeyVaultEmulator
from tests.support.canary import CANARIES
from tests.support.cli import Workspace

C1, C2, _ = CANARIES
IDENTITY_HEADER = "identity-header-for-tests"


class IdentityEndpoint:
    """GET ?api-version=2019-08-01&resource=…[&client_id=…] with X-IDENTITY-HEADER."""

    def __init__(self, idp: FakeIdentityProvider) -> None:
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return None

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self._reply(401, {"error": "invalid header"})
                    return
                self._reply(200, {"access_token": idp.mint(), "expires_on": str(int(time.time()) + 3600),
                                  "resource": query.get("resource", ""), "token_type": "Bearer",
                                  "client_id": query.get("client_id", "system-assigned")})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def identity_endpoint(azure_idp_server: FakeIdentityProvider, monkeypatch: pytest.MonkeyPatch
                      ) -> Iterator[IdentityEndpoint]:
    from reconciler.destinations.azure_key_vault import client as azure_client

    endpoint = IdentityEndpoint(azure_idp_server)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    azure_client._credentials.clear()
    yield endpoint
    azure_client._credentials.clear()
    endpoint.stop()


@pytest.mark.parametrize("client_id", [None, "user-assigned-client-id"])
def test_managed_identity_syncs_to_the_vault(tmp_path: Path, keyvault: KeyVaultEmulator, azure_ca_file: Path,
                                             identity_endpoint: IdentityEndpoint, client_id: str | None) -> None:
    ws = Workspace(tmp_path, "http://127.0.0.1:1")
    credentials: dict[str, Any] = {"method": "managed-identity"}
    if client_id:
        credentials["clientId"] = client_id
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "akv", "app": "azure-key-vault", "caBundle": str(azure_ca_file),
         "credentials": credentials},
    ])
    sync = ws.sync(destination="azure-key-vault", connection="akv", syncOptions={"keySchema": "app-{{secretKey}}"})
    sync["destinationConfig"] = {"vaultBaseUrl": keyvault.url}
    ws.write_spec("app.yaml", [sync])
    ws.set_secrets({"DB_PASSWORD": C1, "API_KEY": C2})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert keyvault.vault.names() >= {"app-DB-PASSWORD", "app-API-KEY"}
    assert identity_endpoint.requests, "the token came from the identity endpoint"
    assert all(q.get("resource", "").startswith("https://vault.azure.net") for q in identity_endpoint.requests)
    assert {q.get("client_id") for q in identity_endpoint.requests} == {client_id}
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []
