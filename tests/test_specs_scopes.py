"""Overlapping key scopes: the pure test, and what the loader does with it."""

from __future__ import annotations

import itertools
import shutil
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import keyschema
from reconciler.specs.loader import load
from reconciler.specs.scopes import Scope, overlaps

DATA = Path(__file__).parent / "data" / "specs"

S = Scope  # brevity in the table


# (a, b, overlap?) -- symmetric; each row is checked both ways
TABLE: list[tuple[Scope, Scope, bool]] = [
    # no keySchema owns everything
    (S(None), S(None), True),
    (S(None), S("APP_{{secretKey}}"), True),
    (S(None), S(exact=frozenset({"app-config"})), True),
    (S("{{secretKey}}"), S("x/{{secretKey}}/y"), True),
    # prefixes
    (S("APP_{{secretKey}}"), S("APP_{{secretKey}}"), True),
    (S("APP_{{secretKey}}"), S("APP_DB_{{secretKey}}"), True),
    (S("APP_{{secretKey}}"), S("WEB_{{secretKey}}"), False),
    (S("app-{{secretKey}}"), S("app_{{secretKey}}"), False),
    # the '/' rule: app/{{secretKey}} cannot reach into app/sub/
    (S("app/{{secretKey}}"), S("app/sub/{{secretKey}}"), False),
    (S("app/{{secretKey}}"), S("app/sub_{{secretKey}}"), True),
    (S("app/{{secretKey}}"), S("app/{{secretKey}}/x"), False),
    (S("app_{{secretKey}}"), S("app_sub/{{secretKey}}"), True),  # no '/' in app_ -> middle may hold one
    (S("{{secretKey}}/v"), S("a/{{secretKey}}/v"), False),
    (S("a/{{secretKey}}/b/{{secretKey}}"), S("a/x/b/{{secretKey}}"), True),
    # suffixes, and prefix/suffix glued over a shared overlap
    (S("{{secretKey}}_PROD"), S("{{secretKey}}_DEV"), False),
    (S("{{secretKey}}_prod"), S("app_{{secretKey}}"), True),  # app_prod is in both
    (S("{{secretKey}}-x"), S("x-{{secretKey}}"), True),
    (S("ab/{{secretKey}}"), S("{{secretKey}}/ab"), True),  # ab/ab: one '/' shared by both affixes
    (S("a/{{secretKey}}"), S("{{secretKey}}/b/c"), False),  # a/b/c: two slashes, a/ allows none
    # environments render into the affixes
    (S("{{environment}}/{{secretKey}}", "dev"), S("{{environment}}/{{secretKey}}", "prod"), False),
    (S("{{environment}}/{{secretKey}}", "dev"), S("dev/{{secretKey}}", "prod"), True),
    (S("{{environment}}-{{secretKey}}", "dev"), S("{{environment}}-{{secretKey}}", "dev-eu"), True),
    # exact names (many-to-one)
    (S(exact=frozenset({"app-config"})), S(exact=frozenset({"app-config"})), True),
    (S(exact=frozenset({"app-config"})), S(exact=frozenset({"web-config"})), False),
    (S(exact=frozenset({"app/config"})), S("app/{{secretKey}}"), True),
    (S(exact=frozenset({"app/sub/config"})), S("app/{{secretKey}}"), False),
    (S(exact=frozenset({"APP_"})), S("APP_{{secretKey}}"), True),  # upstream matches an empty middle
    # Windmill folders: the folder is a base in front of the key
    (S(None, base="f/a/"), S(None, base="f/a/b/"), True),
    (S(None, base="f/a/"), S(None, base="f/b/"), False),
    (S("{{secretKey}}", base="f/a/"), S("{{secretKey}}", base="f/a/b/"), True),
    (S("x/{{secretKey}}", base="f/a/"), S("{{secretKey}}", base="f/a/x/y/"), False),
    (S("x/{{secretKey}}", base="f/a/"), S("{{secretKey}}", base="f/a/x/"), True),
]


@pytest.mark.parametrize(("a", "b", "expected"), TABLE)
def test_overlaps_table(a: Scope, b: Scope, expected: bool) -> None:
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


SCHEMAS = ["{{secretKey}}", "a/{{secretKey}}", "a/b/{{secretKey}}", "a_{{secretKey}}", "{{secretKey}}/a",
           "{{secretKey}}_a", "a{{secretKey}}a", "a/{{secretKey}}_b", "b_{{secretKey}}/a", "{{secretKey}}a/"]
KEYS = ["a", "b", "_", "/", "ab", "a/", "/a", "a_", "_a"]


def test_overlaps_agrees_with_brute_force() -> None:
    """Any key in both scopes is found by search over short keys iff overlaps() says so."""
    alphabet_keys = {"".join(p) for n in range(0, 5) for p in itertools.product(KEYS, repeat=min(n, 2))}
    for sa, sb in itertools.combinations_with_replacement(SCHEMAS, 2):
        a, b = Scope(sa), Scope(sb)
        keys = {keyschema.render(s, k, "") for s in (sa, sb) for k in alphabet_keys}
        brute = any(a.contains(k) and b.contains(k) for k in keys)
        assert overlaps(a, b) is brute, (sa, sb)


BASE = {
    "windmill": ("wm", "destinationConfig: {workspace: ws, path: f/app/}"),
    "aws": ("aws", "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}"),
}


def _sync(name: str, dest: str, conn: str, config: str, key_schema: str | None = None,
          environment: str = "dev", extra: str = "") -> str:
    ks = f'syncOptions: {{keySchema: "{key_schema}"}}\n' if key_schema else ""
    return (f"kind: SecretSync\nname: {name}\nenvironment: {environment}\nsecretPath: /app\n"
            f"destination: {dest}\nconnection: {conn}\n{config}\n{ks}{extra}")


def _load(tmp_path: Path, *docs: str) -> tuple[set[str], list[tuple[str, int, str, str]]]:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    for i, d in enumerate(docs):
        (tmp_path / f"s{i}.yaml").write_text(textwrap.dedent(d))
    specs = load(tmp_path)
    errs = [(d.file.name, d.line, d.path, d.message) for d in specs.diagnostics if d.severity == "error"]
    return set(specs.syncs), errs


AWS_CFG = "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}"
WM_CFG = "destinationConfig: {workspace: ws, path: f/app/}"


def test_windmill_syncs_without_key_schema_overlap(tmp_path: Path) -> None:
    syncs, errs = _load(tmp_path, _sync("a", "windmill", "wm", WM_CFG), _sync("b", "windmill", "wm", WM_CFG))
    assert syncs == set()
    assert [(f, n, p) for f, n, p, _ in errs] == [("s0.yaml", 7, "$.destinationConfig"),
                                                  ("s1.yaml", 7, "$.destinationConfig")]
    assert "key scope overlaps sync 'b' (" in errs[0][3]
    assert "Windmill workspace ws" in errs[0][3]
    assert "no keySchema, so it owns every key there" in errs[0][3]


def test_key_schema_prefix_overlap_points_at_key_schema(tmp_path: Path) -> None:
    syncs, errs = _load(tmp_path,
                        _sync("a", "aws-secrets-manager", "aws", AWS_CFG, "APP_{{secretKey}}"),
                        _sync("b", "aws-secrets-manager", "aws", AWS_CFG, "APP_DB_{{secretKey}}"))
    assert syncs == set()
    assert [(f, n, p) for f, n, p, _ in errs] == [("s0.yaml", 8, "$.syncOptions.keySchema"),
                                                  ("s1.yaml", 8, "$.syncOptions.keySchema")]
    assert "region us-east-1 of connection 'aws'" in errs[1][3]


def test_nested_slash_paths_do_not_overlap(tmp_path: Path) -> None:
    syncs, errs = _load(tmp_path,
                        _sync("a", "aws-secrets-manager", "aws", AWS_CFG, "app/{{secretKey}}"),
                        _sync("b", "aws-secrets-manager", "aws", AWS_CFG, "app/sub/{{secretKey}}"))
    assert errs == [] and syncs == {"a", "b"}


def test_environments_separate_scopes(tmp_path: Path) -> None:
    ks = "{{environment}}/{{secretKey}}"
    syncs, errs = _load(tmp_path,
                        _sync("a", "aws-secrets-manager", "aws", AWS_CFG, ks, "dev"),
                        _sync("b", "aws-secrets-manager", "aws", AWS_CFG, ks, "prod"))
    assert errs == [] and syncs == {"a", "b"}


def test_different_targets_never_overlap(tmp_path: Path) -> None:
    syncs, errs = _load(tmp_path,
                        _sync("a", "aws-secrets-manager", "aws", AWS_CFG),
                        _sync("b", "aws-secrets-manager", "aws", AWS_CFG.replace("us-east-1", "eu-west-1")),
                        _sync("c", "windmill", "wm", WM_CFG),
                        _sync("d", "windmill", "wm", WM_CFG.replace("ws", "other")))
    assert errs == [] and syncs == {"a", "b", "c", "d"}


def test_windmill_nested_folder_is_not_in_scope_of_parent(tmp_path: Path) -> None:
    """A Windmill scope reaches into sub-folders only when its key schema has '/' (issue 11)."""
    syncs, errs = _load(tmp_path,
                        _sync("a", "windmill", "wm", WM_CFG),
                        _sync("b", "windmill", "wm", WM_CFG.replace("f/app/", "f/app/sub/"), "{{secretKey}}"))
    assert errs == [] and syncs == {"a", "b"}
    syncs, errs = _load(tmp_path,
                        _sync("a", "windmill", "wm", WM_CFG, "x/{{secretKey}}"),
                        _sync("b", "windmill", "wm", WM_CFG.replace("f/app/", "f/app/x/"), "{{secretKey}}"))
    assert syncs == set() and len(errs) == 2


def test_disabled_sync_still_overlaps(tmp_path: Path) -> None:
    syncs, errs = _load(tmp_path,
                        _sync("a", "windmill", "wm", WM_CFG, "X_{{secretKey}}", extra="isEnabled: false\n"),
                        _sync("b", "windmill", "wm", WM_CFG, "X_{{secretKey}}"))
    assert syncs == set() and len(errs) == 2


def test_many_to_one(tmp_path: Path) -> None:
    m2o = "destinationConfig: {region: us-east-1, mappingBehavior: many-to-one, secretName: %s}"
    syncs, errs = _load(tmp_path,
                        _sync("a", "aws-secrets-manager", "aws", m2o % "app-config"),
                        _sync("b", "aws-secrets-manager", "aws", m2o % "web-config"),
                        _sync("c", "aws-secrets-manager", "aws", AWS_CFG, "app/{{secretKey}}"))
    assert errs == [] and syncs == {"a", "b", "c"}
    # the rendered name (keySchema applied to secretName) decides
    syncs, errs = _load(tmp_path / "2",
                        _sync("a", "aws-secrets-manager", "aws", m2o % "config", "app/{{secretKey}}"),
                        _sync("c", "aws-secrets-manager", "aws", AWS_CFG, "app/{{secretKey}}"))
    assert syncs == set()
    assert [(f, p) for f, _, p, _ in errs] == [("s0.yaml", "$.syncOptions.keySchema"),
                                               ("s1.yaml", "$.syncOptions.keySchema")]
    syncs, errs = _load(tmp_path / "3",
                        _sync("a", "aws-secrets-manager", "aws", m2o % "same"),
                        _sync("b", "aws-secrets-manager", "aws", m2o % "same"))
    assert [(f, p) for f, _, p, _ in errs] == [("s0.yaml", "$.destinationConfig.secretName"),
                                               ("s1.yaml", "$.destinationConfig.secretName")]


def test_key_vault_compares_hyphenated_case_insensitive_names(tmp_path: Path) -> None:
    cfg = 'destinationConfig: {vaultBaseUrl: "https://v.vault.azure.net"}'
    syncs, errs = _load(tmp_path,
                        _sync("a", "azure-key-vault", "akv", cfg, "app_{{secretKey}}"),
                        _sync("b", "azure-key-vault", "akv", cfg.replace('"}', '/"}'), "APP-{{secretKey}}"))
    assert syncs == set() and len(errs) == 2


SCHEMA_PARTS = ["", "a", "a/", "ab", "a_", "/b", "b", "x/y"]


@st.composite
def _scope(draw: st.DrawFn) -> Scope:
    if draw(st.booleans()) and draw(st.booleans()):
        return Scope(exact=frozenset(draw(st.lists(st.sampled_from(["a", "ab", "a/b", "aXb", "b"]), min_size=1))))
    if draw(st.integers(0, 9)) == 0:
        return Scope(None)
    pre, post = draw(st.sampled_from(SCHEMA_PARTS)), draw(st.sampled_from(SCHEMA_PARTS))
    return Scope(f"{pre}{{{{secretKey}}}}{post}", "dev", folders=draw(st.booleans()))


@settings(max_examples=200, deadline=None)
@given(st.lists(_scope(), min_size=2, max_size=8))
def test_the_prefix_index_finds_exactly_the_pairs_a_full_comparison_finds(scopes: list[Scope]) -> None:
    from reconciler.specs.scopes import _group_overlaps

    named = {f"s{i}": sc for i, sc in enumerate(scopes)}
    brute = {(a, b) for (a, x), (b, y) in itertools.combinations(sorted(named.items()), 2) if overlaps(x, y)}
    assert _group_overlaps(named) == brute
