"""Saved plans and the engine's ``expect`` hook against the in-memory destination and source:
a refused run writes nothing and records nothing, and a plan that goes stale between the
check and the write is still refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine import savedplan
from reconciler.engine.outcome import Refused
from reconciler.engine.reconcile import Reconciler
from reconciler.model import Folder, SourceSecret
from reconciler.specs.loader import load
from tests.support import memory
from tests.test_engine_memory import AWS, Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.state.close()


class FlippingSource(memory.MemorySource):
    """A source whose folder changes after ``after`` reads (someone edits it mid-apply)."""

    def __init__(self, rig: Rig, after: int, **later: str) -> None:
        super().__init__(rig.source.data)
        self.after, self.later = after, later

    def read(self, folder: Folder) -> list[SourceSecret]:
        if self.reads == self.after:
            self.data[(folder.environment, folder.secret_path)] = dict(self.later)
        return super().read(folder)


def _saved(rig: Rig) -> dict[str, Any]:
    rec = rig.reconciler()
    plan = rig.plan()
    return savedplan.build([plan], rec.specs, [], rig.state.fingerprinter)


def test_expect_refusal_writes_and_records_nothing(rig: Rig) -> None:
    rig.secrets(A="1")
    rec = rig.reconciler()
    out = rec.apply_sync(rec.specs.syncs["app"], expect=lambda _plan: "not this one")
    assert out.error == "not this one" and out.failed
    assert rig.store.entries == {} and not any(op in rig.store.calls for op in ("create", "update", "delete"))
    assert rig.state.status("app").syncStatus is None, "a refused run is not a failed run"


def test_saved_plan_applies_when_nothing_moved(rig: Rig) -> None:
    rig.secrets(A="1", B="2")
    saved = _saved(rig)
    (out,) = savedplan.apply_saved(rig.reconciler(), saved, "p")
    assert out.error is None and rig.store.values() == {"app/A": "1", "app/B": "2"}
    assert rig.state.status("app").syncStatus == "succeeded"


def test_plan_going_stale_between_check_and_write_is_refused(rig: Rig) -> None:
    rig.secrets(A="1")
    saved = _saved(rig)
    # read 1: the re-plan that checks the file; read 2: the apply's own plan sees the edit
    source = FlippingSource(rig, after=1, A="2")
    rec = Reconciler(load(rig.ws.specs), rig.state, destinations=memory.catalog({AWS: rig.store}),
                     sources=memory.sources(source))
    (out,) = savedplan.apply_saved(rec, saved, "p")
    assert out.error is not None and "stale" in out.error and "source changed" in out.error
    assert rig.store.entries == {}
    assert rig.state.status("app").syncStatus is None


def test_stale_before_any_write(rig: Rig) -> None:
    rig.secrets(A="1")
    saved = _saved(rig)
    rig.store.put("app/A", "out of band")
    with pytest.raises(Refused, match=r"stale.*destination changed"):
        savedplan.apply_saved(rig.reconciler(), saved, "p")
    assert rig.store.values() == {"app/A": "out of band"}


def test_remove_expect_refuses_when_the_keys_moved(rig: Rig) -> None:
    rig.secrets(A="1", B="2")
    rig.apply()
    rec = rig.reconciler()
    preview = rec.plan_remove_sync(rec.specs.syncs["app"])
    assert preview.plan is not None and [c.key for c in preview.plan.changes] == ["app/A", "app/B"]
    rig.secrets(A="1", B="2", C="3")
    rig.store.put("app/C", "3")
    out = rec.remove_sync(rec.specs.syncs["app"], expect=lambda p: None if len(p.changes) == 2 else "moved")
    assert out.error == "moved" and set(rig.store.values()) == {"app/A", "app/B", "app/C"}
    assert rig.state.status("app").removeStatus is None
