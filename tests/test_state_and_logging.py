"""State store permissions and persistence; log redaction; SecretValue never shows itself."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from reconciler.logging import configure, get_logger
from reconciler.model import Fingerprinter, InventoryEntry, SecretValue
from reconciler.state.store import StateStore
from tests.support.canary import CANARIES, find_leaks


def test_state_dir_and_files_are_private(tmp_path: Path) -> None:
    d = tmp_path / "state"
    st = StateStore(d)
    st.put_inventory("s", {"k": InventoryEntry("k", st.fingerprinter(SecretValue(CANARIES[0])), "v1")})
    st.update_status("s", syncStatus="succeeded")
    st.close()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    assert find_leaks([f.read_bytes() for f in d.iterdir()]) == []


def test_readonly_store_never_creates_files(tmp_path: Path) -> None:
    d = tmp_path / "nothing-here"
    st = StateStore(d, readonly=True)
    assert st.inventory("s") == {}
    assert st.status("s").syncStatus is None
    st.fingerprinter(SecretValue("x"))
    assert not d.exists()


def test_fingerprint_key_is_stable_across_opens(tmp_path: Path) -> None:
    a = StateStore(tmp_path / "s").fingerprinter(SecretValue("v"))
    b = StateStore(tmp_path / "s").fingerprinter(SecretValue("v"))
    assert a == b
    assert StateStore(tmp_path / "other").fingerprinter(SecretValue("v")) != a


def _first_use(directory: str, barrier: Any, out: Any) -> None:
    store = StateStore(Path(directory))
    barrier.wait()
    try:
        out.put(store.fingerprinter(SecretValue("v")))
    except Exception as e:
        out.put(f"error: {e!r}")


def test_first_use_by_concurrent_processes_agrees_on_one_key(tmp_path: Path) -> None:
    """Two applies (or a daemon and an apply) starting on a new state directory at once."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        d = tmp_path / f"s{round_}"
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_first_use, args=(str(d), barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        results = {out.get(timeout=60) for _ in procs}
        for p in procs:
            p.join(timeout=60)
        assert len(results) == 1 and not next(iter(results)).startswith("error"), results
        assert [x.name for x in d.iterdir() if x.name.startswith(".fingerprint")] == []


def test_secret_value_never_shows_itself() -> None:
    v = SecretValue(CANARIES[0])
    shown = [repr(v), str(v), f"{v}", f"{v!r}", f"{[v]}", f"{ {'k': v} }"]
    assert find_leaks(shown) == []
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(v)
    assert repr(Fingerprinter(os.urandom(32))) == "Fingerprinter(<key>)"


def test_log_redaction_processor() -> None:
    buf = io.StringIO()
    configure("json", "debug", stream=buf)
    log = get_logger(sync="s")
    log.info("change.applied", key="k", value=CANARIES[0], nested={"password": CANARIES[1], "ok": "fine"},
             items=[SecretValue(CANARIES[2])], token=CANARIES[1])
    line = buf.getvalue().strip()
    event = json.loads(line)
    assert event["event"] == "change.applied" and event["sync"] == "s" and event["nested"]["ok"] == "fine"
    assert find_leaks([line]) == []
