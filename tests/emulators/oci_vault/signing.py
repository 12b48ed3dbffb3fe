"""OCI API request signatures, verified the way the service does (draft-cavage HTTP
signatures, rsa-sha256), written from protocols.md §4 and test-infrastructure.md §4.

Every request signs ``date (request-target) host``; POST, PUT and PATCH also sign
``content-length content-type x-content-sha256``, and the body must hash to
``x-content-sha256``. The key id is ``<tenancy>/<user>/<fingerprint>``, the fingerprint
being the MD5 of the public key's DER form. Pure: no sockets.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GENERIC_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_CLOCK_SKEW = 300.0  # seconds; OCI refuses a Date further off than five minutes
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ":".join(f"{b:02x}" for b in hashlib.md5(der, usedforsecurity=False).digest())


def parse_authorization(value: str) -> dict[str, str] | None:
    """The parameters of ``Signature k="v",...``; None when it is not a signature."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != "Signature":
        return None
    return dict(_PARAM.findall(rest))


class KeyRing:
    """Registered API signing keys by key id. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def register(self, tenancy: str, user: str, public_key: rsa.RSAPublicKey) -> str:
        key_id = f"{tenancy}/{user}/{fingerprint(public_key)}"
        with self._lock:
            self._keys[key_id] = public_key
        return key_id

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def verify(self, method: str, target: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        """None when the request is signed by a registered key; else why not (for test
        assertions only: the service answers every failure with the same 401)."""
        params = parse_authorization(headers.get("authorization", ""))
        if params is None:
            return "no Signature authorization header"
        if params.get("algorithm") != "rsa-sha256" or params.get("version", "1") != "1":
            return "unsupported signature algorithm or version"
        with self._lock:
            key = self._keys.get(params.get("keyId", ""))
        if key is None:
            return "unknown keyId"
        signed = params.get("headers", "date").split()
        required = GENERIC_HEADERS + (BODY_HEADERS if method in BODY_METHODS else ())
        missing = [h for h in required if h not in signed]
        if missing:
            return f"required headers not signed: {' '.join(missing)}"
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {target}")
            elif name in headers:
                lines.append(f"{name}: {headers[name]}")
            else:
                return f"signed header absent: {name}"
        try:
            key.verify(base64.b64decode(params.get("signature", "")), "\n".join(lines).encode(),
                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        try:
            sent = parsedate_to_datetime(headers["date"]).timestamp()
        except (TypeError, ValueError):
            return "unparseable date"
        if abs(sent - now) > MAX_CLOCK_SKEW:
            return "date too far from the server clock"
        if method in BODY_METHODS:
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if headers.get("x-content-sha256") != digest:
                return "x-content-sha256 does not match the body"
            if headers.get("content-length") != str(len(body)):
                return "content-length does not match the body"
        return None
