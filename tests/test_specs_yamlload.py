"""YAML loading with line marks: every JSON path maps back to a line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.specs.yamlload import json_path, load_dir, load_file, load_text, spec_files

F = Path("spec.yaml")


def _text(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


def test_lines_for_keys_values_and_items() -> None:
    docs, diags = load_text(_text("""
        kind: SecretSync
        name: a
        syncOptions:
          keySchema: "x/{{secretKey}}"
          tags:
            - key: team
              value: payments
            - {key: env, value: dev}
        """), F)
    assert diags == []
    (doc,) = docs
    assert doc.line(()) == 1
    assert doc.line(("syncOptions",)) == 3
    assert doc.line(("syncOptions", "keySchema")) == 4
    assert doc.line(("syncOptions", "tags", 0)) == 6
    assert doc.line(("syncOptions", "tags", 0, "value")) == 7
    assert doc.line(("syncOptions", "tags", 1, "key")) == 8
    # a missing path falls back to its nearest ancestor
    assert doc.line(("syncOptions", "missing", "deeper")) == 3
    assert doc.marks.value_line(("syncOptions",)) == 4


def test_multi_document_and_empty_documents() -> None:
    docs, diags = load_text(_text("""
        # comment only before the first document
        ---
        ---
        kind: Connection
        name: one
        ---
        # empty
        ---
        kind: Connection
        name: two
        """), F)
    assert diags == []
    assert [d.data["name"] for d in docs] == ["one", "two"]
    assert [d.line(("name",)) for d in docs] == [5, 10]


def test_malformed_yaml_reports_line_without_snippet() -> None:
    text = _text("""
        kind: Connection
        name: ok
        credentials:
          token: "hunter2-secret
        next: 1
        """)
    docs, diags = load_text(text, F)
    assert docs == []
    (d,) = diags
    assert d.file == F and d.path == "$"
    assert d.message.startswith("invalid YAML: ")
    assert "hunter2" not in d.message
    assert d.line == 6  # PyYAML's problem mark: where the scanner gave up
    assert "line 4" in d.message  # ...and its context mark: where the quote opened


def test_malformed_yaml_bad_indentation_line() -> None:
    _, diags = load_text("kind: SecretSync\nname: a\n  bad: indent\n", F)
    (d,) = diags
    assert d.line == 3
    assert "invalid YAML" in d.message


def test_error_in_later_document_keeps_earlier_ones() -> None:
    docs, diags = load_text("kind: Connection\nname: a\n---\nkind: [unclosed\n", F)
    assert [d.data["name"] for d in docs] == ["a"]
    assert len(diags) == 1 and diags[0].line == 5


def test_duplicate_keys_are_errors() -> None:
    docs, diags = load_text("kind: SecretSync\nname: a\nsyncOptions:\n  keySchema: x\n  keySchema: y\n", F)
    assert docs == []
    (d,) = diags
    assert (d.line, d.path) == (5, "$.syncOptions.keySchema")
    assert d.message == "duplicate key 'keySchema' (first at line 4)"


def test_non_string_keys_are_errors() -> None:
    _, diags = load_text("kind: SecretSync\non: true\n", F)
    (d,) = diags
    assert d.line == 2
    assert "not a string" in d.message


def test_constructor_error_is_a_diagnostic() -> None:
    text = "kind: Connection\nname: !!python/object:os.system x\n---\nkind: Connection\nname: b\n"
    docs, diags = load_text(text, F)
    assert [d.data["name"] for d in docs] == ["b"]
    assert diags[0].line == 2 and "invalid YAML" in diags[0].message


def test_merge_keys_keep_lines() -> None:
    docs, diags = load_text(_text("""
        base: &b
          region: us-east-1
        cfg:
          <<: *b
          mappingBehavior: one-to-one
        """), F)
    assert diags == []
    assert docs[0].data["cfg"] == {"region": "us-east-1", "mappingBehavior": "one-to-one"}
    assert docs[0].line(("cfg", "region")) == 2
    assert docs[0].line(("cfg", "mappingBehavior")) == 5


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    _, diags = load_text("\n".join(lines) + "\n", F)
    assert diags and "too large" in diags[0].message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), "$"),
        (("syncOptions", "keySchema"), "$.syncOptions.keySchema"),
        (("syncOptions", "tags", 1, "key"), "$.syncOptions.tags[1].key"),
        (("a b", "it's"), "$['a b']['it\\'s']"),
    ],
)
def test_json_path(path: tuple[str | int, ...], expected: str) -> None:
    assert json_path(path) == expected


def test_directory_walk_is_sorted_recursive_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b.yaml", "a.yml", "sub/c.yaml", ".hidden.yaml", ".git/x.yaml", "sub/.d.yaml", "notes.txt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("kind: Connection\n")
    found = [p.relative_to(tmp_path).as_posix() for p in spec_files(tmp_path)]
    assert found == ["a.yml", "b.yaml", "sub/c.yaml"]


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    _, diags = load_file(bad)
    assert diags[0].message == "spec file is not UTF-8 text" and diags[0].line == 1
    _, diags = load_file(tmp_path / "missing.yaml")
    assert diags[0].message == "spec file cannot be read: does not exist"


def test_missing_directory(tmp_path: Path) -> None:
    docs, diags = load_dir(tmp_path / "nope")
    assert docs == [] and diags[0].message == "spec directory does not exist"
