"""Credential references: parsing, resolution, and errors that never carry the value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.model import SecretValue
from reconciler.specs.credentials import CredentialError, is_ref, parse_ref, resolve
from reconciler.specs.model import CredentialRef
from tests.support.canary import CANARIES

SECRET = CANARIES[0]


def test_parse_refs(tmp_path: Path) -> None:
    assert parse_ref({"env": "TOKEN"}, tmp_path) == CredentialRef("env", "TOKEN")
    assert parse_ref({"credential": "aws-secret"}, tmp_path) == CredentialRef("credential", "aws-secret")
    assert parse_ref({"file": "keys/pat"}, tmp_path) == CredentialRef("file", str(tmp_path / "keys" / "pat"))
    assert parse_ref({"file": "../pat"}, tmp_path / "sub") == CredentialRef("file", str(tmp_path / "pat"))
    assert parse_ref({"file": "/run/secrets/x"}, tmp_path) == CredentialRef("file", "/run/secrets/x")
    assert parse_ref({"file": "~/x"}, tmp_path).name == os.path.expanduser("~/x")
    with pytest.raises(ValueError):
        parse_ref({"value": "x"}, tmp_path)


@pytest.mark.parametrize("value", [{"env": "X"}, {"file": "p"}, {"credential": "c"}])
def test_is_ref(value: dict[str, str]) -> None:
    assert is_ref(value)


@pytest.mark.parametrize("value", ["literal", {"env": "X", "file": "p"}, {"env": 1}, {"value": "x"}, {}])
def test_is_not_ref(value: object) -> None:
    assert not is_ref(value)


def test_repr_of_ref_names_the_reference_only() -> None:
    assert repr(CredentialRef("env", "TOKEN")) == "CredentialRef(env:TOKEN)"


def test_resolve_env() -> None:
    v = resolve(CredentialRef("env", "TOKEN"), environ={"TOKEN": SECRET})
    assert isinstance(v, SecretValue) and v.reveal() == SECRET
    assert SECRET not in repr(v)


def test_resolve_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_TEST_TOKEN", SECRET)
    assert resolve(CredentialRef("env", "RECONCILER_TEST_TOKEN")).reveal() == SECRET


@pytest.mark.parametrize(("environ", "message"), [
    ({}, "environment variable TOKEN is not set"),
    ({"TOKEN": ""}, "environment variable TOKEN is empty"),
])
def test_resolve_env_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(CredentialError) as e:
        resolve(CredentialRef("env", "TOKEN"), environ=environ)
    assert str(e.value) == message


@pytest.mark.parametrize(("content", "expected"), [
    (SECRET + "\n", SECRET),
    (SECRET + "\r\n", SECRET),
    (SECRET + "\n\n", SECRET + "\n"),  # only one newline is the editor's
    ("-----BEGIN KEY-----\nabc\n-----END KEY-----\n", "-----BEGIN KEY-----\nabc\n-----END KEY-----"),
    (SECRET, SECRET),
])
def test_resolve_file_strips_one_trailing_newline(tmp_path: Path, content: str, expected: str) -> None:
    f = tmp_path / "secret"
    f.write_bytes(content.encode())
    assert resolve(CredentialRef("file", str(f)), environ={}).reveal() == expected


def test_a_fifo_named_as_a_credential_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(CredentialError, match=r"is a FIFO|not a regular file"):
        resolve(CredentialRef("file", str(fifo)), environ={})


def test_resolve_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(CredentialError) as e:
        resolve(CredentialRef("file", str(missing)), environ={})
    assert str(e.value) == f"credential file {missing} cannot be read: does not exist"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        resolve(CredentialRef("file", str(empty)), environ={})
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    with pytest.raises(CredentialError) as e:
        resolve(CredentialRef("file", str(binary)), environ={})
    assert "not UTF-8" in str(e.value) and SECRET not in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_resolve_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text(SECRET)
    f.chmod(0)
    with pytest.raises(CredentialError, match="Permission denied"):
        resolve(CredentialRef("file", str(f)), environ={})


def test_resolve_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "aws-secret").write_text(SECRET + "\n")
    ref = CredentialRef("credential", "aws-secret")
    assert resolve(ref, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}).reveal() == SECRET
    assert resolve(ref, environ={}, credentials_dir=str(tmp_path)).reveal() == SECRET


def test_resolve_credential_errors(tmp_path: Path) -> None:
    ref = CredentialRef("credential", "aws-secret")
    with pytest.raises(CredentialError) as e:
        resolve(ref, environ={})
    assert str(e.value).startswith("credential 'aws-secret': $CREDENTIALS_DIRECTORY is not set")
    with pytest.raises(CredentialError) as e:
        resolve(ref, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert str(e.value) == f"credential 'aws-secret' ({tmp_path / 'aws-secret'}) cannot be read: does not exist"
    with pytest.raises(CredentialError, match="not a valid credential name"):
        resolve(CredentialRef("credential", "../x"), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_resolve_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CredentialError) as e:
        resolve(CredentialRef("file", str(tmp_path)), environ={})
    assert str(e.value) == f"credential file {tmp_path} is a directory, not a regular file"
