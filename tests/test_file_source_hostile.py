"""Hostile secrets files: an error naming file and line (and what to do), never an empty value
that plans a delete, never the text of the offending token, never a hang."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Folder
from reconciler.sources.errors import SourceError
from reconciler.sources.file import FileSource
from reconciler.yamlsafe import MAX_DEPTH, SECRETS_MAX_BYTES
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace

CANARY = CANARIES[0]
DEV_APP = Folder("dev", "/app")


def _error(tmp_path: Path, text: str | bytes) -> str:
    p = tmp_path / "secrets.yaml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    with pytest.raises(SourceError) as e:
        FileSource(p).read(DEV_APP)
    message = str(e.value)
    assert find_leaks([message]) == [], message
    return message


@pytest.mark.parametrize("value", ["!abc", f"!{CANARY}", "!!binary aGVsbG8=", "!!int 5", "!!float ''"])
def test_a_tagged_value_is_an_error_not_an_empty_value(tmp_path: Path, value: str) -> None:
    m = _error(tmp_path, f"dev:\n  /app:\n    A: x\n    KEY: {value}\n")
    assert m.endswith("secrets.yaml:4: the value of 'KEY' has a YAML tag (it starts with '!'); "
                      "a secrets file holds text: quote it"), m


def test_an_explicit_null_is_null(tmp_path: Path) -> None:
    assert "secrets.yaml:3: the value of 'K' is empty (null)" in _error(tmp_path, "dev:\n  /app:\n    K: !!null ''\n")
    p = tmp_path / "secrets.yaml"
    p.write_text("dev:\n  /app: !!null 'null'\n")
    assert FileSource(p).read(DEV_APP) == []


def test_tagged_entry_and_folder(tmp_path: Path) -> None:
    assert "secrets.yaml:3: the value of 'K' has a YAML tag" in _error(
        tmp_path, "dev:\n  /app:\n    K: !x {value: a}\n")
    assert "secrets.yaml:2: folder '/app' has a YAML tag" in _error(tmp_path, "dev:\n  /app: !x\n    K: a\n")


def test_explicit_str_tag_and_quoted_bang_are_text(tmp_path: Path) -> None:
    p = tmp_path / "secrets.yaml"
    p.write_text("dev:\n  /app:\n    A: !!str 05\n    B: '!abc'\n    C: ! 1.10\n")
    assert {s.key: s.value.reveal() for s in FileSource(p).read(DEV_APP)} == {"A": "05", "B": "!abc", "C": "1.10"}


def test_an_alias_is_refused_without_echoing_it(tmp_path: Path) -> None:
    m = _error(tmp_path, f"dev:\n  /app:\n    A: *{CANARY}\n")
    assert ("secrets.yaml:3: not valid YAML: a value starting with '*' is a YAML alias, and a secrets file takes "
            "none: write the value, quoted") in m, m
    m = _error(tmp_path, f"dev:\n  /app:\n    A: &{CANARY} x\n    B: *{CANARY}\n")
    assert "secrets.yaml:4:" in m, m


@pytest.mark.parametrize(("text", "where", "fragment"), [
    (f'dev:\n  /app:\n    A: "\\q{CANARY}"\n', ":3:", "unknown escape"),
    (f"dev:\n  /app:\n    A: @{CANARY}\n", ":3:", "quote it"),
    (f"dev:\n  /app:\n    A: x\n   B: {CANARY}\n", ":4:", "not valid YAML"),
    (f"dev:\n  /app:\n    A: {CANARY}\x07\n", ":3:", "control character U+0007"),
    (b"dev:\n  /app:\n    A: \x00\n", ":3:", "control character U+0000"),
    (b"dev:\n  /app:\n    A: \xff\n", ":3:", "not UTF-8"),
    ("dev:\n  /app:\n    A: " + "[" * 5000 + "]" * 5000 + "\n", ":3:", f"nested deeper than {MAX_DEPTH} levels"),
])
def test_yaml_problems_name_the_line_never_the_text(tmp_path: Path, text: str | bytes, where: str,
                                                    fragment: str) -> None:
    m = _error(tmp_path, text)
    assert f"secrets.yaml{where}" in m and fragment in m, m


def test_same_folder_spelled_twice_is_an_error(tmp_path: Path) -> None:
    m = _error(tmp_path, "dev:\n  /app:\n    A: x\n  app/:\n    B: y\n")
    assert m.endswith("secrets.yaml:4: secret path 'app/' is the same folder as '/app' (line 2); merge them into one")
    m = _error(tmp_path, "dev:\n  /app:\n    A: x\ndev:\n  /b:\n    B: y\n")
    assert m.endswith("secrets.yaml:4: environment 'dev' appears twice (first at line 1)"), m


def test_a_long_key_is_shortened_and_located(tmp_path: Path) -> None:
    key = "K" * 600
    m = _error(tmp_path, f"dev:\n  /app:\n    A: x\n    {key}: v\n")
    assert m.endswith(f"secrets.yaml:4: secret key '{'K' * 40}…' (600 characters) is longer than 512 characters"), m


def test_fifo_device_directory_and_oversized_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(outcome, lambda: FileSource(fifo).read(DEV_APP)))
    reader.start()
    reader.join(10)
    if reader.is_alive():  # it blocked opening the FIFO: let it go, then fail
        with open(fifo, "w"):
            pass
        reader.join()
        pytest.fail("reading a FIFO blocked")
    assert "fifo.yaml: secrets file is a FIFO (named pipe), not a regular file" in str(outcome[0])
    with pytest.raises(SourceError, match=r"^/dev/zero: secrets file is a character device"):
        FileSource(Path("/dev/zero")).read(DEV_APP)
    with pytest.raises(SourceError, match=r"secrets file is a directory"):
        FileSource(tmp_path).read(DEV_APP)
    big = tmp_path / "big.yaml"
    big.write_text("# x\n" * (SECRETS_MAX_BYTES // 4 + 1))
    with pytest.raises(SourceError, match=r"big.yaml: secrets file is larger than the limit of 16384 KiB"):
        FileSource(big).read(DEV_APP)
    with pytest.raises(SourceError, match=r"nope.yaml: secrets file cannot be read: does not exist"):
        FileSource(tmp_path / "nope.yaml").read(DEV_APP)


def _capture(into: list[BaseException], fn: Any) -> None:
    try:
        fn()
    except BaseException as e:
        into.append(e)


@pytest.mark.parametrize("value", [f"!{CANARY}", f"*{CANARY}"])
def test_through_the_cli_nothing_leaks_and_nothing_is_deleted(tmp_path: Path, aws_endpoint: str, sm_client: Any,
                                                             value: str) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "a", "B": "b"})
    assert ws.run("apply").code == 0
    ws.secrets_file.write_text(f"dev:\n  /app:\n    A: a\n    B: {value}\n")
    for command in (("plan",), ("apply",), ("import", "app")):
        r = ws.run(*command)
        assert r.code == 1 and "secrets.yaml:4:" in r.out + r.err, str(r)
    names = {s["Name"] for s in sm_client.list_secrets()["SecretList"]}
    assert names == {"app/A", "app/B"}, "never a delete"
    status = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert "secrets.yaml:4:" in status["lastSyncMessage"]
    assert ws.leaks() == []
