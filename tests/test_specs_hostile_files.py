"""Hostile spec files: each one is a diagnostic naming file and line (and what to do), never a
hang, a traceback, an "internal error" or the text of the offending token (it may be a secret)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.specs.loader import load
from reconciler.yamlsafe import MAX_DEPTH, SPEC_MAX_BYTES
from tests.support.canary import CANARIES, find_leaks
from tests.support.hostile import run_cli, shared_tmp

CANARY = CANARIES[0]


def _messages(directory: Path) -> list[str]:
    return [f"{d.severity}: {d}" for d in load(directory).diagnostics]


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (f"kind: Connection\nname: k\napp: kms\ncredentials:\n  method: universal-auth\n  clientId: x\n"
     f"  clientSecret: !{CANARY}\n", 7, "YAML tag; quote it"),
    (f"kind: Connection\nname: k\napp: kms\ncredentials:\n  clientSecret: *{CANARY}\n", 5, "YAML alias; quote it"),
    (f"kind: Connection\nname: k\napp: kms\n!{CANARY} k: x\n", 4, "YAML tag; quote it"),
    (f'kind: Connection\nname: "\\q{CANARY}"\n', 2, "unknown escape"),
    (f"kind: Connection\nname: k\n&a x: 1\n&a y: {CANARY}\n", 4, "anchor"),
    (f"kind: Connection\nname: !x!{CANARY} k\n", 2, "YAML tag"),
])
def test_yaml_errors_never_echo_the_token(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    found = _messages(tmp_path)
    assert found, "the spec must be refused"
    assert find_leaks(found) == [], found
    assert any(f"s.yaml:{line}:" in m and fragment in m for m in found), found


def test_control_byte_names_line_column_and_remedy(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("kind: Connection\nname: k\ndescription: a\x07b\n")
    (m,) = _messages(tmp_path)
    assert "s.yaml:3:" in m and "control character U+0007" in m and "column 15" in m, m


def test_nul_byte(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_bytes(b"kind: Connection\nname: k\x00\n")
    (m,) = _messages(tmp_path)
    assert "s.yaml:2:" in m and "U+0000" in m, m


@pytest.mark.parametrize("text", [
    "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "".join("  " * i + f"k{i}:\n" for i in range(500)) + "  " * 500 + "v\n",
])
def test_deep_nesting_is_a_diagnostic(tmp_path: Path, text: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    (m,) = _messages(tmp_path)
    assert f"nested deeper than {MAX_DEPTH} levels" in m and "s.yaml:" in m, m


def test_oversized_spec_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("# padding\n" * (SPEC_MAX_BYTES // 10 + 1))
    (m,) = _messages(tmp_path)
    assert m.startswith("error: ") and "s.yaml" in m and "larger than the limit" in m, m


def test_fifo_and_device_are_skipped_with_a_warning_not_a_hang() -> None:
    with shared_tmp() as d:
        os.mkfifo(d / "pipe.yaml")
        (d / "zero.yaml").symlink_to("/dev/zero")
        (d / "dir.yaml").mkdir()
        (d / "c.yaml").write_text("kind: Connection\nname: c\napp: windmill\ninstanceUrl: http://127.0.0.1:1\n"
                                  "credentials: {method: token, token: {env: T}}\n")
        r = run_cli("validate", str(d), timeout=60)
        assert r.returncode == 0, r
        assert f"warning: {d / 'pipe.yaml'}:0: $: skipped: is a FIFO (named pipe), not a regular file" in r.stderr
        assert f"{d / 'zero.yaml'}:0: $: skipped: is a character device" in r.stderr
        assert "Valid: 0 sync(s), 1 connection(s)" in r.stdout, r


def test_unreadable_directory_and_file_are_errors_naming_them() -> None:
    with shared_tmp() as d:
        (d / "c.yaml").write_text("kind: Connection\nname: c\napp: windmill\ninstanceUrl: http://127.0.0.1:1\n"
                                  "credentials: {method: token, token: {env: T}}\n")
        locked = d / "team"
        locked.mkdir()
        (locked / "s.yaml").write_text("kind: Connection\nname: hidden\n")
        secret = d / "private.yaml"
        secret.write_text("kind: Connection\nname: p\n")
        os.chmod(secret, 0o000)
        os.chmod(locked, 0o000)
        r = run_cli("validate", str(d), unprivileged=True)
        assert r.returncode == 1, r
        assert f"{locked}:0: $: cannot read spec directory: permission denied" in r.stderr, r
        assert f"{secret}:0: $: spec file cannot be read: permission denied" in r.stderr, r
        assert "Traceback" not in r.stderr and "Valid" not in r.stdout


def test_a_secrets_file_that_is_a_fifo_is_named_as_such(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "secrets.yaml")
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: secrets.yaml\n")
    (m,) = _messages(tmp_path)
    expected = f"{tmp_path / 'c.yaml'}:4: $.path: secrets file {tmp_path / 'secrets.yaml'} is not a regular file"
    assert m == f"warning: {expected}"


@pytest.mark.parametrize("line", ["description: 2001-13-45", 'description: !!float "abc"', 'description: !!int "0x"',
                                  "2001-02-30: x", "description: !!timestamp x", "description: !!int ''"])
def test_a_value_python_cannot_construct_is_a_located_diagnostic(tmp_path: Path, line: str) -> None:
    """PyYAML raises a bare ValueError for these: it was an "internal error"."""
    (tmp_path / "s.yaml").write_text(f"kind: Connection\nname: c\n{line}\n---\nkind: Connection\nname: d\n"
                                     "app: windmill\ninstanceUrl: http://127.0.0.1:1\n"
                                     "credentials: {method: token, token: {env: T}}\n")
    specs = load(tmp_path)
    (m,) = [str(d) for d in specs.diagnostics]
    assert m.startswith(f"{tmp_path / 's.yaml'}:3: $: invalid YAML: a value cannot be read as its YAML type"), m
    assert list(specs.connections) == ["d"], "the next document still loads"


def test_a_file_name_cannot_repaint_the_terminal_or_forge_a_diagnostic(tmp_path: Path) -> None:
    """The name was printed raw: an ANSI escape reached the CI log, and a newline in the name
    made a line of its own that read as another file's diagnostic."""
    (tmp_path / "evil\x1b[2J\nfake.yaml:1: $: fine.yaml").write_text("kind: Bogus\n")
    r = run_cli("validate", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "\x1b" not in out and "evil\\x1b[2J\\x0afake.yaml:1: $: fine.yaml:1: $.kind: unknown kind" in out, out
    assert not any(line.startswith("fake.yaml") for line in out.splitlines()), out


def test_a_spec_file_with_an_upper_case_suffix_is_not_skipped_silently(tmp_path: Path) -> None:
    """PAYMENTS.YAML was ignored without a word: its syncs simply did not exist."""
    (tmp_path / "PAYMENTS.YAML").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    (d,) = [d for d in load(tmp_path).diagnostics if "PAYMENTS" in str(d.file)]
    assert d.severity == "warning" and "only files ending in .yaml or .yml (lower case)" in d.message, d


def test_a_secrets_file_that_is_a_looping_link_says_so(tmp_path: Path) -> None:
    """It said "does not exist" while apply said "too many levels of symbolic links"."""
    (tmp_path / "s.yaml").symlink_to("s.yaml")
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    (d,) = load(tmp_path).diagnostics
    assert d.message.endswith("is a broken or looping symbolic link"), d
