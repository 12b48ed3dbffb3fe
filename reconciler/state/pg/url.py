"""A state URL, checked before anything connects: a password is given by reference only.

A URL travels through command lines, unit files and process listings, so a literal password
in it (``user:secret@host`` or ``?password=``) is refused. The password comes from libpq's
own places (``PGPASSFILE``/``~/.pgpass``, ``?passfile=``, ``PGPASSWORD``) or from our two
references, read when connecting and handed to libpq as a keyword, never as text:
``?password_file=PATH`` and ``?password_credential=NAME`` (``$CREDENTIALS_DIRECTORY/NAME``,
systemd's ``LoadCredential=``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from reconciler.errors import StateError

SCHEMES = ("postgresql", "postgres")
#: our references; libpq does not know them, so they are taken out of the URL
_REFS = ("password_file", "password_credential")
_MAX_BYTES = 4096


@dataclass
class StateUrl:
    """A checked URL: ``conninfo`` has no password; ``password`` (if any) came by reference,
    as last read (:func:`reread` reads it again)."""

    conninfo: str
    #: host:port/database, for messages
    where: str
    password_ref: tuple[str, str] | None = None
    password: str | None = field(default=None, repr=False)


def reread(url: StateUrl, environ: Mapping[str, str] | None = None) -> str | None:
    """The password from the URL's reference as it is now (a rotated file's new one)."""
    if url.password_ref is None:
        return url.password
    return _resolve(url.password_ref, os.environ if environ is None else environ)


def is_state_url(text: str) -> bool:
    return urlsplit(text).scheme in SCHEMES


def parse(text: str, environ: Mapping[str, str] | None = None) -> StateUrl:
    """The URL checked and its password reference resolved; errors never repeat the URL whole
    (it may carry the very password they refuse)."""
    env = os.environ if environ is None else environ
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise StateError("the state URL is not a valid postgresql:// URL") from None
    if parts.scheme not in SCHEMES:
        raise StateError(f"the state URL must start with postgresql:// (got {parts.scheme or 'no'} scheme)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is not None or any(k == "password" for k, _ in query):
        raise StateError(
            "the state URL carries a literal password, which command lines, unit files and process listings "
            "would show; give it by reference: ?password_file=PATH, ?password_credential=NAME (systemd "
            "LoadCredential=), a passfile (PGPASSFILE, ~/.pgpass, ?passfile=PATH) or PGPASSWORD")
    if any(k == "sslpassword" for k, _ in query):
        raise StateError(
            "the state URL carries sslpassword, the client key's passphrase, which command lines, unit files and "
            "process listings would show; use a client key without one, readable by the service's user only "
            "(?sslkey=PATH, mode 0600)")
    refs = [(k, v) for k, v in query if k in _REFS]
    if len(refs) > 1:
        raise StateError("the state URL names more than one password reference; keep one")
    password = _resolve(refs[0], env) if refs else None
    kept = [(k, v) for k, v in query if k not in _REFS]
    # not urlunsplit: it drops the "//" of an empty host (postgresql:///db?host=/run/postgresql)
    conninfo = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{urlencode(kept)}" if kept else "")
    given = dict(kept)  # libpq's query parameters override the URL's parts
    host = given.get("host") or given.get("hostaddr") or parts.hostname or "localhost"
    db = given.get("dbname") or parts.path.lstrip("/") or given.get("user") or parts.username or "default"
    where = f"{host}:{given.get('port') or port or 5432}/{db}"
    return StateUrl(conninfo, where, refs[0] if refs else None, password)


def _resolve(ref: tuple[str, str], env: Mapping[str, str]) -> str:
    kind, name = ref
    if kind == "password_credential":
        if not name or "/" in name or name in (".", ".."):
            raise StateError(f"password_credential={name!r} in the state URL is not a credential name")
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise StateError(f"password_credential={name} in the state URL: $CREDENTIALS_DIRECTORY is not set "
                             "(run under systemd with LoadCredential=, or use ?password_file=PATH)")
        path = Path(directory) / name
    else:
        path = Path(name).expanduser()
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except OSError as e:
        raise StateError(f"cannot read the state database password from {path}: "
                         f"{e.strerror or type(e).__name__}") from None
    try:
        text = raw.decode("utf-8") if len(raw) <= _MAX_BYTES else ""
    except UnicodeDecodeError:
        raise StateError(f"the state database password file {path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise StateError(f"the state database password file {path} is empty or too large")
    return text
