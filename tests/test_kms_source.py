"""The KMS source against the emulator: import merge order, references, recursion, metadata,
change tokens, and all-or-nothing import writes (with the failure said in keys, never values)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.engine.connect import open_source, webhook_secret
from reconciler.errors import ConfigError
from reconciler.model import Folder, SecretValue
from reconciler.sources.errors import SourceError
from reconciler.sources.kms import KmsSource, open_kms
from reconciler.sources.kms_client import RetryPolicy
from reconciler.specs.loader import load
from reconciler.specs.model import CredentialRef
from tests.emulators.kms import BATCH, SECRETS, KmsEmulator
from tests.support.canary import CANARIES, find_leaks

C1, C2, C3 = CANARIES
P = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
APP = Folder("dev", "/app", P)


@pytest.fixture
def kms() -> Iterator[KmsEmulator]:
    with KmsEmulator() as emu:
        emu.add_identity("client-1", "client-secret")
        emu.store.folder(P, "dev", "/app")
        yield emu


@pytest.fixture
def source(kms: KmsEmulator) -> Iterator[KmsSource]:
    src = open_kms("kms", {"siteUrl": kms.url}, "client-1", SecretValue("client-secret"),
                   sleep=lambda _s: None, retry=RetryPolicy(max_attempts=2))
    yield src
    src.close()


def values(secrets: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {s.key: s.value.reveal() for s in secrets}


def test_imports_merge_local_first_then_later_import(kms: KmsEmulator, source: KmsSource) -> None:
    st = kms.store
    st.put(P, "dev", "/app", "SHARED", "local")
    st.put(P, "dev", "/first", "SHARED", "first")
    st.put(P, "dev", "/first", "ONLY_FIRST", "1")
    st.put(P, "dev", "/first", "BOTH", "first")
    st.put(P, "prod", "/second", "BOTH", "second")
    st.add_import(P, "dev", "/app", "dev", "/first")
    st.add_import(P, "dev", "/app", "prod", "/second")
    got = values(source.read(APP))
    assert got == {"SHARED": "local", "ONLY_FIRST": "1", "BOTH": "second"}
    assert kms.count("GET", SECRETS) == 1


def test_references_are_expanded(kms: KmsEmulator, source: KmsSource) -> None:
    st = kms.store
    st.put(P, "prod", "/db/main", "HOST", "db.internal")
    st.put(P, "dev", "/app", "PORT", "5432")
    st.put(P, "dev", "/app", "URL", "postgres://${prod.db.main.HOST}:${PORT}")
    st.put(P, "dev", "/app", "NESTED", "[${URL}]")
    got = values(source.read(APP))
    assert got["URL"] == "postgres://db.internal:5432"
    assert got["NESTED"] == "[postgres://db.internal:5432]"


def test_comments_and_metadata_are_kept(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "API_KEY", C1, comment="rotated monthly", metadata={"team": "payments"})
    (s,) = source.read(APP)
    assert s.comment == "rotated monthly" and dict(s.metadata) == {"team": "payments"}


def test_recursive_reads_sub_folders_and_refuses_duplicates(kms: KmsEmulator, source: KmsSource) -> None:
    st = kms.store
    st.put(P, "dev", "/app", "A", "a")
    st.put(P, "dev", "/app/db", "B", "b")
    st.put(P, "dev", "/app/db/replica", "C", "c")
    st.put(P, "dev", "/application", "NOT_MINE", "x")
    assert values(source.read(APP)) == {"A": "a"}
    assert values(source.read(Folder("dev", "/app", P, recursive=True))) == {"A": "a", "B": "b", "C": "c"}
    st.put(P, "dev", "/app/db/replica", "A", C1)
    with pytest.raises(SourceError, match=r"A is in both /app and /app/db/replica") as e:
        source.read(Folder("dev", "/app", P, recursive=True))
    assert find_leaks([str(e.value)]) == []


def test_personal_secrets_are_skipped_and_hidden_values_refused(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "A", "team")
    kms.store.put(P, "dev", "/app", "MINE", "personal", type="personal")
    assert values(source.read(APP)) == {"A": "team"}
    kms.hide_values = True
    with pytest.raises(SourceError, match="may not read the value of A"):
        source.read(APP)


def test_unknown_project_or_environment_is_a_clear_error(source: KmsSource) -> None:
    with pytest.raises(SourceError, match=r"project nope, staging:/app\): .*not found .*\(404\)"):
        source.read(Folder("staging", "/app", "nope"))
    with pytest.raises(SourceError, match="no projectId"):
        source.read(Folder("dev", "/app"))


def test_missing_folder_reads_empty(source: KmsSource) -> None:
    assert source.read(Folder("dev", "/nothing-here", P)) == []


def test_change_token_moves_with_imports_and_references(kms: KmsEmulator, source: KmsSource) -> None:
    st = kms.store
    st.put(P, "dev", "/app", "A", "${dev.shared.X}")
    st.put(P, "dev", "/shared", "X", "1")
    st.put(P, "dev", "/imported", "I", "1")
    st.add_import(P, "dev", "/app", "dev", "/imported")
    t0 = source.change_token(APP)
    assert source.change_token(APP) == t0
    st.put(P, "dev", "/shared", "X", "2")
    t1 = source.change_token(APP)
    assert t1 != t0, "a referenced secret changed"
    st.put(P, "dev", "/imported", "I", "2")
    t2 = source.change_token(APP)
    assert t2 != t1, "an imported secret changed"
    st.put(P, "dev", "/app", "A", "${dev.shared.X}", comment="now documented")
    assert source.change_token(APP) != t2, "a comment changed"
    assert kms.count("GET", SECRETS) == 5, "one list call per token"
    assert len(t0) == 64


def test_write_creates_and_updates_in_two_batch_calls(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "OLD", "old")
    source.write(APP, {"OLD": SecretValue(C1), "NEW": SecretValue(C2)})
    assert kms.store.values(P, "dev", "/app") == {"OLD": C1, "NEW": C2}
    assert kms.count("POST", BATCH) == 1 and kms.count("PATCH", BATCH) == 1
    assert kms.count("GET", SECRETS) == 1
    source.write(APP, {})
    assert kms.count() == 4, "login + list + create + update; nothing for an empty write"


def test_a_failed_update_rolls_back_the_creates(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "OLD", "old")
    kms.fault("PATCH", BATCH, 500, times=-1, body=f'{{"message": "{C1}"}}')
    with pytest.raises(SourceError) as e:
        source.write(APP, {"OLD": SecretValue(C1), "NEW": SecretValue(C2)})
    msg = str(e.value)
    assert "updating OLD failed" in msg and "nothing was written" in msg
    assert kms.store.values(P, "dev", "/app") == {"OLD": "old"}
    assert kms.count("DELETE", BATCH) == 1
    assert find_leaks([msg, repr(e.value)]) == []


def test_a_failed_rollback_names_what_is_left(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "OLD", "old")
    kms.fault("PATCH", BATCH, 400)
    kms.fault("DELETE", BATCH, 503, times=-1)
    with pytest.raises(SourceError, match=r"rolling back failed too .*created NEW remain in the folder") as e:
        source.write(APP, {"OLD": SecretValue(C1), "NEW": SecretValue(C2)})
    assert find_leaks([str(e.value)]) == []


def test_a_failed_create_writes_nothing(kms: KmsEmulator, source: KmsSource) -> None:
    kms.store.put(P, "dev", "/app", "OLD", "old")
    kms.fault("POST", BATCH, drop=True)
    with pytest.raises(SourceError, match=r"import wrote nothing: creating NEW failed"):
        source.write(APP, {"OLD": SecretValue(C1), "NEW": SecretValue(C2)})
    assert kms.store.values(P, "dev", "/app") == {"OLD": "old"}
    assert kms.count("PATCH", BATCH) == 0


def test_a_create_whose_answer_was_lost_is_rolled_back(kms: KmsEmulator, source: KmsSource) -> None:
    kms.fault("POST", BATCH, drop=True, after=True)
    with pytest.raises(SourceError, match=r"import wrote nothing: creating NEW failed"):
        source.write(APP, {"NEW": SecretValue(C2)})
    assert kms.store.values(P, "dev", "/app") == {}
    assert kms.count("DELETE", BATCH) == 1


def test_a_refused_create_never_deletes_anothers_key(kms: KmsEmulator, source: KmsSource) -> None:
    real_list = source._list

    def racing_list(*a: object, **kw: object) -> dict:  # type: ignore[type-arg]
        listed = real_list(*a, **kw)  # type: ignore[arg-type]
        kms.store.put(P, "dev", "/app", "NEW", "someone else's")  # created between our list and our create
        return listed

    source._list = racing_list  # type: ignore[method-assign]
    with pytest.raises(SourceError, match=r"import wrote nothing: creating NEW failed .*\(400\)"):
        source.write(APP, {"NEW": SecretValue(C2)})
    assert kms.store.values(P, "dev", "/app") == {"NEW": "someone else's"}
    assert kms.count("DELETE", BATCH) == 0


def test_writing_into_a_missing_folder_or_recursively_is_refused(kms: KmsEmulator, source: KmsSource) -> None:
    with pytest.raises(SourceError, match=r"creating A failed .*not found .*\(404\)"):
        source.write(Folder("dev", "/missing", P), {"A": SecretValue(C1)})
    with pytest.raises(SourceError, match="recursive sync cannot import"):
        source.write(Folder("dev", "/app", P, recursive=True), {"A": SecretValue(C1)})


# -- connections and specs ------------------------------------------------------------------------
KMS_CONN = """\
kind: Connection
name: kms
app: kms
siteUrl: {url}
pollInterval: 30
webhookSecret: {{file: hook.secret}}
credentials:
  method: universal-auth
  clientId: client-1
  clientSecret: {{env: TEST_KMS_CLIENT_SECRET}}
---
kind: Connection
name: aws
app: aws
credentials: {{method: default}}
"""

SYNC = """\
kind: SecretSync
name: app
source: kms
projectId: {project}
environment: dev
secretPath: /app
{extra}
destination: aws-secrets-manager
connection: aws
destinationConfig: {{region: us-east-1, mappingBehavior: one-to-one}}
syncOptions: {{keySchema: "app/{{{{secretKey}}}}"{options}}}
"""


def specs(tmp_path: Path, url: str, extra: str = "", options: str = "", project: str = P) -> Path:
    (tmp_path / "conns.yaml").write_text(KMS_CONN.format(url=url))
    (tmp_path / "app.yaml").write_text(SYNC.format(project=project, extra=extra, options=options))
    return tmp_path


def test_open_source_from_a_connection(kms: KmsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    (tmp_path / "hook.secret").write_text(C3 + "\n")
    loaded = load(specs(tmp_path, kms.url, extra="recursive: true"))
    assert loaded.ok, loaded.diagnostics
    sync, conn = loaded.syncs["app"], loaded.connections["kms"]
    assert sync.folder == Folder("dev", "/app", P, recursive=True)
    assert conn.settings["webhookSecret"] == CredentialRef("file", str(tmp_path / "hook.secret"))
    assert webhook_secret(conn) == SecretValue(C3)
    with pytest.raises(ConfigError, match="TEST_KMS_CLIENT_SECRET is not set"):
        open_source(conn)
    monkeypatch.setenv("TEST_KMS_CLIENT_SECRET", "client-secret")
    src = open_source(conn)
    try:
        assert values(src.read(sync.folder)) == {"A": C1}
    finally:
        src.close()


def test_spec_rules_for_kms_sources(tmp_path: Path) -> None:
    def errors(**kw: str) -> list[str]:
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        return [f"{x.path}: {x.message}" for x in load(specs(d, "http://127.0.0.1:1", **kw)).diagnostics
                if x.severity == "error"]

    assert errors() == []
    assert any("$.recursive" in e and "initialSyncBehavior" not in e and "import" in e
               for e in errors(extra="recursive: true", options=", initialSyncBehavior: import-prioritize-source"))
    assert any("$.recursive" in e for e in errors(extra="recursive: yes please"))
    assert any("projectId is required" in e for e in errors(project='""'))
    d = tmp_path / "file-source"
    d.mkdir()
    specs(d, "http://127.0.0.1:1", extra="recursive: true")
    (d / "local.yaml").write_text("kind: Connection\nname: local\napp: file\npath: secrets.yaml\n")
    (d / "app.yaml").write_text((d / "app.yaml").read_text().replace("source: kms", "source: local"))
    assert any("recursive reads need a kms source" in str(x) for x in load(d).diagnostics)
    d = tmp_path / "poll"
    d.mkdir()
    specs(d, "http://127.0.0.1:1")
    (d / "conns.yaml").write_text(KMS_CONN.format(url="http://127.0.0.1:1").replace("pollInterval: 30",
                                                                                    "pollInterval: 2"))
    assert any("$.pollInterval" in str(x) for x in load(d).diagnostics)
