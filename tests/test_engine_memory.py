"""The engine against an in-memory destination and source: injected, nothing patched, no
server. The destination keeps every rule of AWS Secrets Manager's descriptor (names, empty
values, tags, KMS key); only the storage is a dict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.changes import Action
from reconciler.engine.reconcile import Reconciler
from reconciler.model import Lifecycle, SecretValue
from reconciler.specs.loader import load
from reconciler.state.store import StateStore
from tests.support import memory
from tests.support.cli import Workspace

AWS = "aws-secrets-manager"


class Rig:
    def __init__(self, root: Path, **sync: Any) -> None:
        self.ws = Workspace(root, "http://127.0.0.1:9")  # the endpoint is never called
        self.ws.write_spec("app.yaml", [self.ws.sync(**sync)])
        self.store = memory.MemoryStore()
        self.source = memory.MemorySource({("dev", "/app"): {}})
        self.state = StateStore(self.ws.state)

    def secrets(self, **values: str) -> None:
        self.source.data[("dev", "/app")] = dict(values)

    def reconciler(self) -> Reconciler:
        return Reconciler(load(self.ws.specs), self.state, destinations=memory.catalog({AWS: self.store}),
                          sources=memory.sources(self.source))

    def apply(self) -> Any:
        rec = self.reconciler()
        return rec.apply_sync(rec.specs.syncs["app"])

    def plan(self) -> Any:
        rec = self.reconciler()
        out = rec.plan_sync(rec.specs.syncs["app"])
        assert out.error is None, out.error
        return out.plan


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.state.close()


def test_apply_converges_and_a_noop_reads_and_writes_nothing(rig: Rig) -> None:
    rig.secrets(A="1", B="2")
    out = rig.apply()
    assert not out.failed and rig.store.values() == {"app/A": "1", "app/B": "2"}
    assert not rig.plan().changes
    inventory = rig.state.inventory("app")
    assert {k: e.version for k, e in inventory.items()} == {k: e.version for k, e in rig.store.entries.items()}
    rig.store.calls.clear()
    assert not rig.apply().results
    assert dict(rig.store.calls) == {"list": 1}, "warm state: the listing only"


def test_an_out_of_band_edit_is_read_once_and_corrected(rig: Rig) -> None:
    rig.secrets(A="1")
    rig.apply()
    rig.store.put("app/A", "edited")
    (change,) = rig.plan().changes
    assert change.action is Action.UPDATE and change.drift
    rig.apply()
    assert rig.store.values() == {"app/A": "1"}
    rig.store.calls.clear()
    rig.apply()
    assert dict(rig.store.calls) == {"list": 1}


def test_restoring_an_unchanged_value_writes_no_new_version(rig: Rig) -> None:
    """The value of a secret scheduled for deletion cannot be read: the planner marks the
    update after the restore compare-first, and the destination skips the write."""
    rig.store.put("app/A", "1")
    rig.store.entries["app/A"].lifecycle = Lifecycle.PENDING_DELETION
    rig.secrets(A="1")
    restore, update = rig.plan().changes
    assert (restore.action, update.action) == (Action.RESTORE, Action.UPDATE) and update.compare_first
    version = rig.store.entries["app/A"].version
    assert not rig.apply().failed
    assert rig.store.entries["app/A"].version == version and rig.store.calls["write"] == 0
    rig.store.calls.clear()
    rig.apply()
    assert dict(rig.store.calls) == {"list": 1}, "the restored key is known to state afterwards"


def test_a_stray_is_replaced_on_a_normal_first_sync(rig: Rig) -> None:
    """Issue 9: one in-scope stray and ten new keys is not "emptying the scope"."""
    rig.store.put("app/STRAY", "x")
    rig.secrets(**{f"K{i}": str(i) for i in range(10)})
    out = rig.apply()
    assert not out.failed, out.plan.issues
    assert set(rig.store.values()) == {f"app/K{i}" for i in range(10)}


def test_a_tag_over_the_limit_is_a_plan_error_and_the_key_is_kept(tmp_path: Path) -> None:
    r = Rig(tmp_path, syncOptions={"syncSecretMetadataAsTags": False,
                                   "tags": [{"key": f"t{i}", "value": "x"} for i in range(47)]})
    r.store.put("app/A", "old", **{f"tag:f{i}": "y" for i in range(5)})
    r.secrets(A="new")
    p = r.plan()
    assert not p.changes and any("tags exceed" in i.message for i in p.errors)
    r.state.close()


def test_import_prioritize_destination_writes_the_source_first(tmp_path: Path) -> None:
    r = Rig(tmp_path, syncOptions={"initialSyncBehavior": "import-prioritize-destination"})
    r.store.put("app/ONLY_THERE", "d")
    r.store.put("app/BOTH", "dest")
    r.secrets(BOTH="src", NEW="n")
    out = r.apply()
    assert not out.failed
    assert r.source.data[("dev", "/app")] == {"BOTH": "dest", "NEW": "n", "ONLY_THERE": "d"}
    assert r.store.values() == {"app/BOTH": "dest", "app/NEW": "n", "app/ONLY_THERE": "d"}
    r.state.close()


def test_remove_deletes_what_the_sync_maps_and_forgets_it(rig: Rig) -> None:
    rig.secrets(A="1", B="2")
    rig.apply()
    rig.store.put("other/X", "keep")
    rec = rig.reconciler()
    out = rec.remove_sync(rec.specs.syncs["app"])
    assert not out.failed and rig.store.values() == {"other/X": "keep"}
    assert rig.state.inventory("app") == {}


def in_scope(key: str) -> bool:
    """app/{{secretKey}}: a '/' in the prefix keeps sub-folders out (upstream's rule)."""
    return key.startswith("app/") and "/" not in key[4:]


KEYS = st.sampled_from(["A", "B", "C", "D_1", "e"])
VALUES = st.sampled_from(["1", "2", "x y", "ü", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.dictionaries(KEYS, VALUES), after=st.dictionaries(KEYS, VALUES),
       strays=st.dictionaries(st.sampled_from(["app/A", "app/Z", "other/A", "appA", "app/sub/B"]),
                              st.sampled_from(["s", "t"])),
       edits=st.dictionaries(KEYS, VALUES))
def test_property_converges_and_never_touches_keys_out_of_scope(
        tmp_path_factory: pytest.TempPathFactory, before: dict[str, str], after: dict[str, str],
        strays: dict[str, str], edits: dict[str, str]) -> None:
    r = Rig(tmp_path_factory.mktemp("p"), reconcile={"maxDeletes": "100%"})
    try:
        for k, v in strays.items():
            r.store.put(k, v)
        outside = {k: e.value for k, e in r.store.entries.items() if not in_scope(k)}
        for source in (before, after):
            r.secrets(**source)
            r.apply()
            for k, v in edits.items():  # out-of-band edits of keys we own
                if f"app/{k}" in r.store.entries:
                    r.store.put(f"app/{k}", v or "z")
            r.apply()
            assert not r.plan().changes
            r.store.calls.clear()
            assert not r.apply().results
            assert r.store.calls["write"] == 0 and sum(r.store.calls.values()) <= 2
            expected = {f"app/{k}": v for k, v in source.items() if v}  # AWS holds no empty value
            if source:
                assert {k: v for k, v in r.store.values().items() if in_scope(k)} == expected
            assert {k: e.value for k, e in r.store.entries.items() if k in outside} == outside
            assert all(isinstance(e.value, SecretValue) for e in r.store.entries.values())
    finally:
        r.state.close()


def test_a_bug_in_one_sync_is_that_syncs_failure_not_the_commands(rig: Rig) -> None:
    """Only ReconcilerError was caught per sync: anything else (a library's UnicodeEncodeError,
    a KeyError) escaped plan/apply and stopped every other sync of the command with it."""
    rig.secrets(A="1")
    rig.store.fail_next["list"] = RuntimeError("a library message quoting canary-value")  # type: ignore[assignment]
    out = rig.reconciler().plan_sync(rig.reconciler().specs.syncs["app"])
    assert out.error == "internal error (RuntimeError)", "the type only: a library's message may quote a value"
    rig.store.fail_next["list"] = RuntimeError("a library message quoting canary-value")  # type: ignore[assignment]
    out = rig.apply()
    assert out.error == "internal error (RuntimeError)"
    assert rig.state.status("app").syncStatus == "failed"
    assert rig.apply().error is None and rig.store.values() == {"app/A": "1"}
