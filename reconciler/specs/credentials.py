"""Credential references: specs say *where* a secret is, never what it is.

Resolution happens as late as possible (when a connection is opened), so a spec directory
can be validated on a machine that has none of the credentials. Errors name the reference
(variable, file or credential name) and never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from reconciler.errors import CredentialError
from reconciler.model import SecretValue
from reconciler.specs.model import CredentialRef
from reconciler.yamlsafe import InputError, read_regular

REF_KINDS: Final = ("env", "file", "credential")
#: a credential is a token or a key, not a file system: refuse to slurp /dev/zero
MAX_BYTES: Final = 1 << 20


# A reference that cannot be resolved: the message names the reference, never a value.
__all__ = ["CredentialError", "is_ref", "parse_ref", "resolve"]


def is_ref(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and next(iter(value)) in REF_KINDS
        and isinstance(next(iter(value.values())), str)
    )


def parse_ref(value: Mapping[str, Any], base_dir: Path) -> CredentialRef:
    """A validated ``{env|file|credential: NAME}``; relative files become absolute."""
    if not is_ref(value):
        raise ValueError("not a credential reference")
    kind, name = next(iter(value.items()))
    if kind == "file":
        return CredentialRef("file", absolute(name, base_dir))
    if kind == "env":
        return CredentialRef("env", name)
    return CredentialRef("credential", name)


def absolute(path: str, base_dir: Path) -> str:
    """``path`` (``~`` expanded) made absolute against ``base_dir``, the spec file's directory."""
    p = Path(path).expanduser()
    return os.path.abspath(p if p.is_absolute() else base_dir / p)


def resolve(
    ref: CredentialRef,
    *,
    environ: Mapping[str, str] | None = None,
    credentials_dir: str | None = None,
) -> SecretValue:
    """The secret a reference points at.

    ``environ`` defaults to ``os.environ``; ``credentials_dir`` defaults to
    ``$CREDENTIALS_DIRECTORY`` in ``environ`` (systemd's ``LoadCredential=``).
    """
    env = os.environ if environ is None else environ
    if ref.kind == "env":
        value = env.get(ref.name)
        if value is None:
            raise CredentialError(f"environment variable {ref.name} is not set")
        if value == "":
            raise CredentialError(f"environment variable {ref.name} is empty")
        return SecretValue(value)
    if ref.kind == "file":
        return SecretValue(_read(Path(ref.name), f"credential file {ref.name}"))
    if ref.kind == "credential":
        if not ref.name or "/" in ref.name or ref.name in (".", ".."):
            raise CredentialError(f"credential {ref.name!r}: not a valid credential name")
        directory = credentials_dir if credentials_dir is not None else env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise CredentialError(
                f"credential {ref.name!r}: $CREDENTIALS_DIRECTORY is not set "
                "(run under systemd with LoadCredential=, or use an {env: ...} or {file: ...} reference)"
            )
        path = Path(directory) / ref.name
        return SecretValue(_read(path, f"credential {ref.name!r} ({path})"))
    raise CredentialError(f"unknown credential reference kind {ref.kind!r}")


def _read(path: Path, what: str) -> str:
    try:  # non-blocking and regular files only: a FIFO named as a credential must not hang a run
        raw = read_regular(path, MAX_BYTES)
    except InputError as e:
        raise CredentialError(f"{what} {e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{what} is not UTF-8 text") from None
    # one trailing newline is an editor's, not the secret's (`echo secret > file`)
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if text == "":
        raise CredentialError(f"{what} is empty")
    return text
