"""The session contract every destination implements, and the plain data it is opened with.

The engine decides *which* values to read and the planner *what* to write; a session only
lists, reads the values it is asked for, and executes changes. Naming lives in
:mod:`reconciler.destinations.naming`, everything else a destination declares in its
:class:`~reconciler.destinations.catalog.Descriptor`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from reconciler.changes import Change, ChangeResult
from reconciler.destinations.naming import Scope
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.model import ConnectionInfo, ObservedEntry, SecretValue

__all__ = ["ConnectionInfo", "Scope", "Session", "StopSignal", "apply_by_key", "header_secret", "stopped", "stopping"]

class StopSignal(Protocol):
    """A ``threading.Event``, or anything else that says when writes must stop (a lock's
    fence)."""

    def is_set(self) -> bool: ...


#: set by the engine around a session's apply; once a signal is set, a change not yet
#: started is reported as not started (an interrupted apply finishes what is in flight)
_STOP: contextvars.ContextVar[tuple[StopSignal, ...]] = contextvars.ContextVar("reconciler_stop", default=())
NOT_STARTED = "not started: the apply was interrupted"


@contextlib.contextmanager
def stopping(*signals: StopSignal | None) -> Iterator[None]:
    token = _STOP.set(tuple(s for s in signals if s is not None))
    try:
        yield
    finally:
        _STOP.reset(token)


def stopped() -> bool:
    """Whether the apply in progress was asked to stop starting writes (a batched
    destination checks this once, before its single write)."""
    return any(s.is_set() for s in _STOP.get())


class Session(Protocol):
    """An open connection to one destination for one sync (ESO's provider contract).

    The engine lists, asks for the values it needs, and hands over the planned changes; the
    session decides nothing. Opened by ``Descriptor.open(view, connection)``.
    """

    def list(self, scope: Scope) -> list[ObservedEntry]:
        """Every entry that may be in ``scope`` (all pages), with version marker, lifecycle,
        ownership marker and properties. Entries outside the scope may be included (the
        planner ignores them); pending-deletion entries of ``scope.wanted`` names are."""
        ...

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """Current values of these keys (only those asked for; unreadable ones left out)."""
        ...

    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Execute the changes as planned, reporting each result as it lands (so an
        interrupted apply still records what was written). A batched destination may write
        them all at once and then report each."""
        ...

    def close(self) -> None: ...


def apply_by_key(
    changes: Sequence[Change],
    apply_one: Callable[[Change], ChangeResult],
    on_result: Callable[[ChangeResult], None],
    *,
    workers: int = 1,
) -> None:
    """Run changes with bounded concurrency across keys, in plan order within one key
    (a RESTORE lands before its UPDATE). A ReconcilerError from ``apply_one`` fails that
    change only (with the destination's Retry-After kept); the others still run.
    ``on_result`` is always called on the calling thread, so the engine's state writes
    never race."""

    def attempt(change: Change) -> ChangeResult:
        if stopped():
            return ChangeResult(change, False, error=NOT_STARTED)
        try:
            return apply_one(change)
        except ReconcilerError as exc:  # a destination's refusal, or the run's deadline
            return ChangeResult(change, False, error=str(exc), retry_after=exc.retry_after)

    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.key, []).append(change)

    def run(group: list[Change]) -> list[ChangeResult]:
        results = []
        for change in group:
            result = attempt(change)
            results.append(result)
            if not result.ok:  # a failed RESTORE makes the UPDATE behind it pointless
                results.extend(ChangeResult(c, False, error="skipped: an earlier step for this key failed")
                               for c in group[len(results):])
                break
        return results

    if workers <= 1 or len(groups) <= 1:
        for group in groups.values():
            for result in run(group):
                on_result(result)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        # each worker runs in a copy of this context: the run's deadline and stop flag,
        # and the log context, follow the work onto the pool's threads
        futures = [pool.submit(contextvars.copy_context().run, run, group) for group in groups.values()]
        for future in as_completed(futures):
            for result in future.result():
                on_result(result)


def header_secret(connection: ConnectionInfo, name: str) -> str | None:
    """A credential sent in an HTTP header: printable ASCII, or a config error naming the field.

    Otherwise a stray byte in a token file surfaces as the HTTP library's error: a crash of
    the whole command (a non-ASCII letter), or a "dropped connection" retried until the
    deadline (a line break) -- and a library's message may quote the value.
    """
    value = connection.secret(name)
    if value is not None and not (value.isascii() and value.isprintable()):
        raise ConfigError(f"connection {connection.name}: credentials.{name}: holds a character no HTTP header "
                          "can carry (a line break, a control character or a non-ASCII letter); "
                          "check the credential for a stray byte")
    return value
