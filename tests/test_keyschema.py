"""Key schemas against upstream's semantics (Infisical ``matchesSchema``/``stripSchema``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import keyschema as ks


@pytest.mark.parametrize(
    ("schema", "key", "env", "expected"),
    [
        (None, "DB_URL", "dev", "DB_URL"),
        ("", "DB_URL", "dev", "DB_URL"),
        ("   ", "DB_URL", "dev", "DB_URL"),
        ("{{secretKey}}", "DB_URL", "dev", "DB_URL"),
        ("APP_{{secretKey}}", "DB_URL", "dev", "APP_DB_URL"),
        ("{{secretKey}}_SUFFIX", "DB_URL", "dev", "DB_URL_SUFFIX"),
        ("{{environment}}/{{secretKey}}", "DB_URL", "prod", "prod/DB_URL"),
        ("  app/{{environment}}/{{secretKey}}  ", "K", "dev", "app/dev/K"),
        ("{{secretKey}}_{{secretKey}}", "K", "dev", "K_K"),
        # no HTML escaping, unlike handlebars' {{}}
        ("{{secretKey}}", "A&B<x>", "dev", "A&B<x>"),
        ("p_{{secretKey}}", "a\"b'c`=", "dev", "p_a\"b'c`="),
        # one pass: neither the key nor the environment can inject a placeholder
        ("{{secretKey}}", "{{environment}}", "dev", "{{environment}}"),
        ("{{environment}}_{{secretKey}}", "K", "{{secretKey}}", "{{secretKey}}_K"),
    ],
)
def test_render(schema: str | None, key: str, env: str, expected: str) -> None:
    assert ks.render(schema, key, env) == expected


@pytest.mark.parametrize(
    ("key", "schema", "env", "expected"),
    [
        # no schema: the sync owns everything
        ("ANYTHING", None, "dev", True),
        ("a/b/c", "", "dev", True),
        ("a/b/c", "  ", "dev", True),
        # no placeholder once compiled: exact match only
        ("FIXED", "FIXED", "dev", True),
        ("FIXED_X", "FIXED", "dev", False),
        ("dev-FIXED", "{{environment}}-FIXED", "dev", True),
        ("prod-FIXED", "{{environment}}-FIXED", "dev", False),
        # prefix / suffix
        ("APP_DB", "APP_{{secretKey}}", "dev", True),
        ("DB", "APP_{{secretKey}}", "dev", False),
        ("app_DB", "APP_{{secretKey}}", "dev", False),
        ("DB_dev", "{{secretKey}}_{{environment}}", "dev", True),
        ("DB_prod", "{{secretKey}}_{{environment}}", "dev", False),
        ("dev/DB/x", "{{environment}}/{{secretKey}}/x", "dev", True),
        # both empty: true, whatever the key
        ("", "{{secretKey}}", "dev", True),
        ("a/b", "{{secretKey}}", "dev", True),
        # length rule: prefix and suffix may not overlap
        ("AB", "AB{{secretKey}}B", "dev", False),
        ("ABB", "AB{{secretKey}}B", "dev", True),
        # upstream accepts an empty middle
        ("APP_", "APP_{{secretKey}}", "dev", True),
        # the '/' rule (PR #5142)
        ("/path/X", "/path/{{secretKey}}", "dev", True),
        ("/path/nested/X", "/path/{{secretKey}}", "dev", False),
        ("X/sub", "{{secretKey}}/sub", "dev", True),
        ("a/X/sub", "{{secretKey}}/sub", "dev", False),
        # no '/' in prefix or suffix: the middle may hold one
        ("APP_a/b", "APP_{{secretKey}}", "dev", True),
        # repeated placeholder: prefix from the first part, suffix from the last
        ("A_B", "{{secretKey}}_{{secretKey}}", "dev", True),
        ("pre-A-mid-B-suf", "pre-{{secretKey}}-mid-{{secretKey}}-suf", "dev", True),
        ("pre-A-suf", "pre-{{secretKey}}-mid-{{secretKey}}-suf", "dev", True),
        ("XX-A-suf", "pre-{{secretKey}}-mid-{{secretKey}}-suf", "dev", False),
        # our generalisation: inner '/' literals do not push a schema out of its own scope
        ("a/K/b/K", "a/{{secretKey}}/b/{{secretKey}}", "dev", True),
        ("a/K/b/K/c", "a/{{secretKey}}/b/{{secretKey}}", "dev", False),
    ],
)
def test_matches(key: str, schema: str | None, env: str, expected: bool) -> None:
    assert ks.matches(key, schema, env) is expected


@pytest.mark.parametrize(
    ("key", "schema", "expected"),
    [
        ("DB", None, "DB"),
        ("APP_DB", "APP_{{secretKey}}", "DB"),
        ("DB_dev", "{{secretKey}}_{{environment}}", "DB"),
        ("/path/DB", "/path/{{secretKey}}", "DB"),
        ("dev/DB/x", "{{environment}}/{{secretKey}}/x", "DB"),
        ("K_K", "{{secretKey}}_{{secretKey}}", "K"),
        ("AB_AB", "{{secretKey}}_{{secretKey}}", "AB"),
        ("a/K/b/K", "a/{{secretKey}}/b/{{secretKey}}", "K"),
        # out of scope
        ("OTHER", "APP_{{secretKey}}", None),
        ("/path/nested/X", "/path/{{secretKey}}", None),
        # in scope, but no source key renders to it: never imported as a bogus key
        ("APP_", "APP_{{secretKey}}", None),
        ("A_B", "{{secretKey}}_{{secretKey}}", None),
        ("AB_", "{{secretKey}}_{{secretKey}}", None),
        ("FIXED", "FIXED", None),
    ],
)
def test_strip(key: str, schema: str | None, expected: str | None) -> None:
    assert ks.strip(key, schema, "dev") == expected


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, ""),
        ("", ""),
        ("{{secretKey}}", ""),
        ("APP_{{secretKey}}", "APP_"),
        ("{{environment}}/{{secretKey}}", "dev/"),
        ("{{secretKey}}_SUFFIX", ""),
        ("FIXED", "FIXED"),
        ("a/{{secretKey}}/b/{{secretKey}}", "a/"),
    ],
)
def test_literal_prefix(schema: str | None, expected: str) -> None:
    assert ks.literal_prefix(schema, "dev") == expected


def _azure(name: str) -> str:
    return name.replace("_", "-")


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, None),
        ("APP_{{secretKey}}", "APP-{{secretKey}}"),
        ("{{secretKey}}_{{environment}}_X", "{{secretKey}}-{{environment}}-X"),
        ("{{secretKey}}", "{{secretKey}}"),
        ("  A_{{secretKey}}  ", "A-{{secretKey}}"),
    ],
)
def test_transform_touches_literals_only(schema: str | None, expected: str | None) -> None:
    assert ks.transform(schema, _azure) == expected


def test_transformed_schema_scopes_transformed_names() -> None:
    """Azure Key Vault: match on the hyphenated name with the hyphenated schema (upstream
    matched a `_` schema against hyphenated names and never pruned)."""
    schema = ks.transform("APP_{{secretKey}}", _azure)
    name = _azure(ks.render("APP_{{secretKey}}", "DB_URL", "dev"))
    assert name == "APP-DB-URL"
    assert ks.matches(name, schema, "dev")
    assert not ks.matches(name, "APP_{{secretKey}}", "dev")


@pytest.mark.parametrize(
    ("schema", "fragments"),
    [
        ("{{secretKey}}", []),
        ("APP_{{environment}}/{{secretKey}}-x", []),
        ("{{secretKey}}_{{secretKey}}", []),  # upstream says "exactly one" but checks presence
        ("  {{secretKey}}  ", []),
        ("APP_", ["must contain {{secretKey}}"]),
        ("", ["must contain {{secretKey}}"]),
        ("APP.{{secretKey}}", ["may only contain"]),
        ("${secretKey}", ["may only contain", "placeholders are written exactly", "must contain"]),
        ("{{ secretKey }}", ["placeholders are written exactly", "must contain"]),
        ("{{secret_key}}", ["placeholders are written exactly"]),
        ("{secretKey}_{{secretKey}}", ["placeholders are written exactly"]),
        ("a" * 250 + "{{secretKey}}", ["longer than 255"]),
    ],
)
def test_validate(schema: str, fragments: list[str]) -> None:
    problems = ks.validate(schema)
    if not fragments:
        assert problems == []
    for fragment in fragments:
        assert any(fragment in p for p in problems), (fragment, problems)


def test_validate_no_hint_for_plain_charset_errors() -> None:
    (problem,) = ks.validate("APP.{{secretKey}}")
    assert "placeholders are written exactly" not in problem


def test_validate_length_counts_after_trim() -> None:
    schema = "a" * (255 - len("{{secretKey}}")) + "{{secretKey}}"
    assert ks.validate(f"  {schema}  ") == []
    assert ks.validate("a" + schema) != []


# -- properties ------------------------------------------------------------------------------

_literal = st.text(alphabet="abAB09_-/", min_size=0, max_size=4)
_token = st.one_of(_literal, st.just(ks.SECRET_KEY), st.just(ks.ENVIRONMENT))


@st.composite
def schemas(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_token, max_size=5))
    tokens.insert(draw(st.integers(0, len(tokens))), ks.SECRET_KEY)
    schema = "".join(tokens)
    assert ks.validate(schema) == []
    return schema


keys = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=8)
envs = st.text(alphabet="abc-09", min_size=1, max_size=5)


@settings(max_examples=400, deadline=None)
@given(schemas(), keys, envs)
def test_render_is_in_scope_and_strips_back(schema: str, key: str, env: str) -> None:
    name = ks.render(schema, key, env)
    assert ks.matches(name, schema, env)
    assert ks.strip(name, schema, env) == key
    assert name.startswith(ks.literal_prefix(schema, env))


@settings(max_examples=300, deadline=None)
@given(schemas(), st.text(alphabet="abc/", min_size=1, max_size=6), envs)
def test_slash_rule(schema: str, key: str, env: str) -> None:
    """A key with '/' is claimed only where the schema leaves '/' free (no '/' around it)."""
    name = ks.render(schema, key, env)
    parts = schema.strip().replace(ks.ENVIRONMENT, env).split(ks.SECRET_KEY)
    guarded = "/" in parts[0] or "/" in parts[-1]
    if not guarded:
        assert ks.matches(name, schema, env)
    elif "/" in key:
        assert not ks.matches(name, schema, env)
        assert ks.strip(name, schema, env) is None


@settings(max_examples=300, deadline=None)
@given(schemas(), st.text(alphabet="abAB_-/", max_size=10), envs)
def test_strip_only_returns_what_renders_back(schema: str, name: str, env: str) -> None:
    key = ks.strip(name, schema, env)
    if key is not None:
        assert key != ""
        assert ks.render(schema, key, env) == name
        assert ks.matches(name, schema, env)
