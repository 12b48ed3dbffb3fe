"""Runs asked for by name (``POST /syncs/<name>/trigger``) and their results (``GET /runs/<id>``).

The runner coalesces: a trigger during a run queues one rerun, and a trigger while a run is
queued joins it. A waiter must get a run that *started after* its request, never the one
already in progress, so a trigger does not learn an id from the run in flight: it claims the
id the sync's *next* run will take (two triggers before that start share it). The run takes
the claim when it starts, and its result is kept (the newest few hundred) for ``GET /runs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.outcome import Outcome
from reconciler.engine.report import lines

#: finished runs kept for ``GET /runs/<id>``
KEEP = 256
#: the longest a ``GET /runs/<id>?wait=`` holds its connection
MAX_WAIT = 60.0


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class _Run:
    id: str
    sync: str
    state: str = "queued"  # queued | running | finished
    result: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    then: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"run": self.id, "sync": self.sync, "state": self.state, **self.result}


class Runs:
    """Lives on the daemon's loop; nothing here is thread-safe (nothing needs to be)."""

    def __init__(self) -> None:
        self._claims: dict[str, _Run] = {}  # sync -> the run its next start becomes
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self.closed: str | None = None

    def claim(self, sync: str) -> tuple[str, bool]:
        """The id of ``sync``'s next run, and whether an earlier request already claimed it."""
        run = self._claims.get(sync)
        if run is not None:
            return run.id, True
        run = self._claims[sync] = _Run(new_id(), sync)
        self._remember(run)
        return run.id, False

    def claimed(self, sync: str) -> bool:
        """Someone waits for ``sync``'s next run."""
        return sync in self._claims

    def request(self, sync: str, refused: tuple[int, str] | None,
                trigger: Callable[[], bool]) -> tuple[int, dict[str, Any]]:
        """``POST /syncs/<name>/trigger``: claim the next run's id, then trigger (the run
        cannot start before this returns: both happen on the loop, in this order)."""
        if refused is not None:
            return refused[0], {"sync": sync, "error": refused[1]}
        run_id, joined = self.claim(sync)
        if not trigger():
            if not joined:
                self._runs.pop(run_id, None)
                self._claims.pop(sync, None)
            return 503, {"sync": sync, "error": "the daemon is stopping"}
        return 202, {"sync": sync, "run": run_id, "joined": joined}

    @contextlib.contextmanager
    def run(self, sync: str) -> Iterator[str]:
        """One run of ``sync`` starts now (taking a claim, if any). A run that ends without
        a result (a bug, a sync gone meanwhile) still answers its waiters."""
        run = self._claims.pop(sync, None) or _Run(new_id(), sync)
        run.state = "running"
        self._remember(run)
        try:
            yield run.id
        except Exception as e:
            self._settle(run, "failure", [f"{sync}: failed: internal error ({type(e).__name__})"])
            raise
        finally:
            if run.state != "finished":
                self._settle(run, "failure", [f"{sync}: not run (it is no longer defined or runnable)"])

    def handed(self, sync: str) -> str:
        """The id of a run another replica makes (this one only answers for it): not this
        sync's next run here, so no local run takes it."""
        run = _Run(new_id(), sync)
        self._remember(run)
        return run.id

    def when_done(self, run_id: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call ``fn(view)`` once the run is finished (at once if it is)."""
        run = self._runs.get(run_id)
        if run is None:
            return
        if run.state == "finished":
            fn(run.view())
        else:
            run.then.append(fn)

    def settle(self, run_id: str, result: str, text: list[str]) -> None:
        """Finish a run with a result made elsewhere (a handed-over run)."""
        run = self._runs.get(run_id)
        if run is not None:
            self._settle(run, result, text)

    def finish(self, run_id: str, out: Outcome) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            self._settle(run, "failure" if out.failed else "success", lines(out))

    def get(self, run_id: str) -> dict[str, Any] | None:
        run = self._runs.get(run_id)
        return None if run is None else run.view()

    async def wait(self, run_id: str, seconds: float) -> dict[str, Any] | None:
        """The run once finished, or as it stands after ``seconds`` (at most ``MAX_WAIT``)."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.done.wait(), max(0.0, min(seconds, MAX_WAIT)))
        return run.view()

    def close(self, why: str) -> None:
        """The daemon stops: runs that will never start or finish answer their waiters now."""
        self.closed = why
        for run in list(self._runs.values()):
            if run.state != "finished":
                self._settle(run, "failure", [f"{run.sync}: not finished: {why}"])
        self._claims.clear()

    def _settle(self, run: _Run, result: str, text: list[str]) -> None:
        if run.state == "finished":
            return
        run.state, run.result = "finished", {"result": result, "lines": text}
        run.done.set()
        then, run.then = run.then, []
        for fn in then:
            fn(run.view())

    def _remember(self, run: _Run) -> None:
        self._runs[run.id] = run
        self._runs.move_to_end(run.id)
        excess = len(self._runs) - KEEP
        if excess > 0:  # forget the oldest finished runs; never one someone may wait for
            for old in [r.id for r in self._runs.values() if r.state == "finished"][:excess]:
                del self._runs[old]
