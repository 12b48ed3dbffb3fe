"""Import into a secrets file: only the imported keys' bytes change; every value written reads
back exactly; the file is replaced atomically and keeps its mode and symlink."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import Folder, SecretValue
from reconciler.sources.errors import SourceError
from reconciler.sources.file import FileSource

DEV_APP = Folder("dev", "/app")

ORIGINAL = textwrap.dedent("""\
    # secrets for the payments service -- keep sorted
    dev:
      /app:
        PORT: 05432          # leading zero matters
        ENABLED: yes
        VERSION: 1.10
        ON: x
        CERT: |
          line one
          line two

        DB:
          value: old-db
          comment: the primary   # reviewed
      /other: {A: '1', B: "2"}
    prod:
        /app:
            PORT: 5432
""")


def _src(tmp_path: Path, text: str) -> FileSource:
    p = tmp_path / "secrets.yaml"
    p.write_text(text)
    return FileSource(p)


def _values(src: FileSource, folder: Folder = DEV_APP) -> dict[str, str]:
    return {s.key: s.value.reveal() for s in src.read(folder)}


def test_import_changes_only_the_imported_keys(tmp_path: Path) -> None:
    src = _src(tmp_path, ORIGINAL)
    src.write(DEV_APP, {"DB": SecretValue("new: db # not a comment"), "NEW_KEY": SecretValue(" spaced ")})
    expected = ORIGINAL.replace("value: old-db", 'value: "new: db # not a comment"').replace(
        "      comment: the primary   # reviewed\n",
        '      comment: the primary   # reviewed\n    NEW_KEY: " spaced "\n')
    assert src.path.read_text() == expected
    assert _values(src) == {"PORT": "05432", "ENABLED": "yes", "VERSION": "1.10", "ON": "x",
                            "CERT": "line one\nline two\n", "DB": "new: db # not a comment", "NEW_KEY": " spaced "}


def test_overwriting_a_block_scalar_keeps_the_blank_line_after_it(tmp_path: Path) -> None:
    src = _src(tmp_path, ORIGINAL)
    src.write(DEV_APP, {"CERT": SecretValue("x")})
    assert src.path.read_text() == ORIGINAL.replace("|\n      line one\n      line two\n", '"x"\n')


@pytest.mark.parametrize(("folder", "original", "expected"), [
    (Folder("dev", "/other"), ORIGINAL, ORIGINAL.replace("""B: "2"}""", """B: "2", K: "v"}""")),
    (Folder("prod", "/app"), ORIGINAL, ORIGINAL + '        K: "v"\n'),
    (Folder("prod", "/new"), ORIGINAL, ORIGINAL + '    /new:\n        K: "v"\n'),
    (Folder("qa", "/app"), ORIGINAL, ORIGINAL + 'qa:\n  /app:\n    K: "v"\n'),
    (DEV_APP, "", 'dev:\n  /app:\n    K: "v"\n'),
    (DEV_APP, "# only a comment", '# only a comment\ndev:\n  /app:\n    K: "v"\n'),
    (DEV_APP, "dev:\n  /app:\n", 'dev:\n  /app:\n    K: "v"\n'),
    (DEV_APP, "dev:\n  /app:   # empty for now\nprod: {}\n", 'dev:\n  /app:   # empty for now\n    K: "v"\nprod: {}\n'),
    (DEV_APP, "dev:\n  /app: ~\n", 'dev:\n  /app: {K: "v"}\n'),
    (DEV_APP, "dev:\n  /app: {}\n", 'dev:\n  /app: {K: "v"}\n'),
    (DEV_APP, "dev:\n  /app: {A: x,}\n", 'dev:\n  /app: {A: x, K: "v"}\n'),
    (DEV_APP, "dev: {/app: }\n", 'dev: {/app: {K: "v"} }\n'),
    (DEV_APP, "dev:\n  app/:\n    A: x", 'dev:\n  app/:\n    A: x\n    K: "v"\n'),
    (DEV_APP, "dev:\r\n  /app:\r\n    A: x\r\nprod: {}\r\n",
     'dev:\r\n  /app:\r\n    A: x\r\n    K: "v"\r\nprod: {}\r\n'),
    (DEV_APP, "\ufeffdev:\n  /app:\n    A: x\n", '\ufeffdev:\n  /app:\n    A: x\n    K: "v"\n'),
    (DEV_APP, "dev:\n  /app:\n    A: 'multi\n      line'  # c\n# end\n",
     'dev:\n  /app:\n    A: \'multi\n      line\'  # c\n    K: "v"\n# end\n'),
])
def test_new_key_goes_where_a_person_would_put_it(tmp_path: Path, folder: Folder, original: str, expected: str) -> None:
    src = _src(tmp_path, original)
    src.write(folder, {"K": SecretValue("v")})
    assert src.path.read_bytes().decode() == expected
    assert _values(src, folder)["K"] == "v"


def test_missing_file_is_created_private(tmp_path: Path) -> None:
    src = FileSource(tmp_path / "new.yaml")
    src.write(DEV_APP, {"ON": SecretValue("yes"), "null": SecretValue("")})
    assert src.path.read_text() == 'dev:\n  /app:\n    "ON": "yes"\n    "null": ""\n'
    assert os.stat(src.path).st_mode & 0o777 == 0o600
    assert _values(src) == {"ON": "yes", "null": ""}


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(new=_TEXT, old=_TEXT)
def test_any_value_reads_back_exactly(tmp_path: Path, new: str, old: str) -> None:
    src = _src(tmp_path, ORIGINAL)
    src.write(DEV_APP, {"PORT": SecretValue(old), "FRESH": SecretValue(new)})
    values = _values(src)
    assert values["PORT"] == old and values["FRESH"] == new
    assert values["ENABLED"] == "yes" and values["CERT"] == "line one\nline two\n"
    assert _values(src, Folder("prod", "/app")) == {"PORT": "5432"}


def test_mode_symlink_and_no_temp_file_left(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text(ORIGINAL)
    os.chmod(real, 0o640)
    link = tmp_path / "secrets.yaml"
    link.symlink_to(real)
    FileSource(link).write(DEV_APP, {"PORT": SecretValue("1")})
    assert link.is_symlink() and os.stat(real).st_mode & 0o777 == 0o640
    assert "PORT: \"1\"" in real.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.yaml", "secrets.yaml"]


def test_a_broken_file_is_never_overwritten(tmp_path: Path) -> None:
    broken = ORIGINAL + "qa:\n  /app:\n    X: !tagged\n"
    src = _src(tmp_path, broken)
    with pytest.raises(SourceError, match=r"secrets.yaml:21: .*quote it"):
        src.write(DEV_APP, {"PORT": SecretValue("1")})
    assert src.path.read_text() == broken


def test_the_dump_based_writer_would_have_lost_these(tmp_path: Path) -> None:
    """What the issue saw: comments gone, 05432 -> 2842, yes -> true, 1.10 -> 1.1, ON -> true."""
    src = _src(tmp_path, ORIGINAL)
    src.write(DEV_APP, {"NEW_KEY": SecretValue("x")})
    text = src.path.read_text()
    assert "# leading zero matters" in text and "PORT: 05432" in text and "ENABLED: yes" in text
    assert yaml.safe_load(text)["dev"]["/app"]["NEW_KEY"] == "x"


def test_cli_import_says_where_and_the_next_plan_is_empty(tmp_path: Path, aws_endpoint: str, sm_client: object) -> None:
    from tests.support.cli import Workspace

    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    original = "# payments\ndev:\n  /app:\n    PORT: 05432   # zero!\n    ENABLED: yes\n    VERSION: 1.10\n"
    ws.secrets_file.write_text(original)
    assert ws.run("apply").code == 0
    sm_client.create_secret(Name="app/EXTRA", SecretString=" padded ")  # type: ignore[attr-defined]
    r = ws.run("import", "app", "--priority", "source")
    assert r.code == 0, str(r)
    assert f"  < imported EXTRA into {ws.secrets_file} (dev:/app)" in r.out, str(r)
    assert ws.secrets_file.read_text() == original + '    EXTRA: " padded "\n'
    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)


def test_concurrent_imports_into_one_file_keep_every_key(tmp_path: Path) -> None:
    """Each import reads, edits and replaces the whole file: two at once (two syncs on one
    source in the daemon, two `reconciler import`s) and the later replace dropped the
    other's keys -- which the next sync then deleted at the destination as "not in source"."""
    import threading

    src = _src(tmp_path, "dev:\n  /app:\n    SEED: x\n")
    rounds, writers = 15, 4
    for r in range(rounds):
        barrier = threading.Barrier(writers)

        def write(n: int, r: int = r, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            FileSource(src.path).write(Folder("dev", f"/f{n}"), {f"K{r}": SecretValue(f"v{r}")})

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for n in range(writers):
        assert _values(src, Folder("dev", f"/f{n}")) == {f"K{r}": f"v{r}" for r in range(rounds)}, n
