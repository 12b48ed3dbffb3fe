"""The OCI Vault emulator on the shared emulator base (tests/emulators/httpserver.py): both
API base paths on one server, every request's signature verified, plain HTTP by default
(the SDK accepts an ``http://`` service endpoint)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators.httpserver import Fault, HttpsEmulator, Record, Reply
from tests.emulators.oci_vault.signing import KeyRing
from tests.emulators.oci_vault.store import VaultStore, error

__all__ = ["MANAGEMENT", "RETRIEVAL", "Fault", "OciVaultEmulator", "Record"]

MANAGEMENT = "/20180608"  # VaultsClient
RETRIEVAL = "/20190301"  # SecretsClient
_FAULT_CODES = {400: "InvalidParameter", 401: "NotAuthenticated", 404: "NotAuthorizedOrNotFound",
                409: "IncorrectState", 412: "NoEtagMatch", 429: "TooManyRequests",
                500: "InternalServerError", 503: "ServiceUnavailable"}


class OciVaultEmulator(HttpsEmulator):
    """Vault management (/20180608) and secret retrieval (/20190301) over HTTP(S)."""

    def __init__(self, ca: Any = None, *, port: int = 0, store: VaultStore | None = None) -> None:
        super().__init__(ca, port=port)
        self.store = store or VaultStore()
        self.keys = KeyRing()
        #: why each refused request was refused (the service says only NotAuthenticated)
        self.auth_failures: list[str] = []
        self._request = threading.local()

    def register_key(self, tenancy: str, user: str, public_key: rsa.RSAPublicKey) -> str:
        """Accept requests signed with this key; returns its key id."""
        return self.keys.register(tenancy, user, public_key)

    def reset(self) -> None:
        self.store.reset()
        self.auth_failures.clear()
        self.clear()

    def value_reads(self) -> int:
        """Requests that returned (or would have returned) a secret's value."""
        return self.count(None, rf"{RETRIEVAL}/secretbundles(/.*)?")

    def writes(self) -> int:
        """Management-API writes (getByName is a POST, but a read)."""
        return self.count("POST", rf"{MANAGEMENT}/.*") + self.count("PUT", rf"{MANAGEMENT}/.*")

    # -- the base's hooks ------------------------------------------------------------------------
    def authenticate(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        client_id = headers.get("opc-request-id", "")
        self._request.id = f"{client_id}/{uuid.uuid4().hex.upper()}" if client_id else uuid.uuid4().hex.upper()
        why = self.keys.verify(method, target, headers, body, time.time())
        if why is None:
            return None
        self.auth_failures.append(why)
        return error(401, "NotAuthenticated",
                     "The required information to complete authentication was not provided or was incorrect.")

    def response_headers(self) -> dict[str, str]:
        return {"opc-request-id": getattr(self._request, "id", uuid.uuid4().hex.upper())}

    def fault_body(self, status: int) -> Any:
        code = _FAULT_CODES.get(status, "InternalServerError" if status >= 500 else "InvalidParameter")
        return {"code": code, "message": f"Injected fault: {code}."}

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        parsed: Any = {}
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return error(400, "CannotParseRequest", "The request body could not be parsed as JSON.")
            if not isinstance(parsed, dict):
                return error(400, "CannotParseRequest", "The request body must be a JSON object.")
        if_match = headers.get("if-match")
        st = self.store
        seg = path.strip("/").split("/")
        if seg[:2] == [MANAGEMENT[1:], "secrets"]:
            rest = seg[2:]
            if not rest:
                if method == "GET":
                    return st.list(query)
                if method == "POST":
                    return st.create(parsed)
            elif len(rest) == 1:
                if method == "GET":
                    return st.get(rest[0])
                if method == "PUT":
                    return st.update(rest[0], parsed, if_match)
            elif len(rest) == 3 and rest[1] == "actions" and method == "POST":
                if rest[2] == "scheduleDeletion":
                    return st.schedule_deletion(rest[0], parsed, if_match)
                if rest[2] == "cancelDeletion":
                    return st.cancel_deletion(rest[0], if_match)
        if seg[:2] == [RETRIEVAL[1:], "secretbundles"]:
            rest = seg[2:]
            if rest == ["actions", "getByName"] and method == "POST":
                return st.bundle_by_name(query)
            if len(rest) == 1 and method == "GET":
                return st.bundle(rest[0], query)
        return error(404, "NotAuthorizedOrNotFound", f"No operation {method} {path}.")
