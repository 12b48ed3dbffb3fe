"""The daemon's control token: who may trigger runs and read their results.

Loopback alone does not say "a person on this host": a service-mesh sidecar (Istio forwards
inbound traffic from 127.0.0.6) or a ``kubectl port-forward`` makes remote clients arrive
from loopback. So the daemon also writes a random token into its state directory at start
(mode 0600, as ``daemon.json``: readable by the service's user only), and the run endpoints
want it as ``Authorization: Bearer <token>``. ``reconciler trigger`` reads it from the same
state directory, so it works for whoever can read the daemon's state, and for nobody else.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from reconciler import atomicfile

FILE_NAME = "control.token"


def create(state_dir: Path) -> str:
    """A new token, written to ``state_dir`` (each start makes a new one)."""
    token = secrets.token_urlsafe(32)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomicfile.replace(state_dir / FILE_NAME, (token + "\n").encode("ascii"), prefix=".control-")
    return token


def read(state_dir: Path) -> str:
    """The running daemon's token; OSError when there is none to read."""
    return (state_dir / FILE_NAME).read_text(encoding="ascii", errors="replace").strip()


def header(token: str) -> dict[str, str]:
    """The request header that carries ``token`` (none for no token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def authorized(headers: Mapping[str, str], token: str) -> bool:
    """Whether a request (header names lower-cased) carries ``token``."""
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
