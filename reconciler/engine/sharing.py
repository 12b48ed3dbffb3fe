"""One listing per destination target for syncs that run together.

When several syncs run together against one target (one AWS account and region, one vault,
one workspace) — the syncs of one ``apply``, or a daemon's periodic checks and a ``git pull``
that changed many specs — the first of them lists the target once, wide enough for all of
them (the longest literal prefix they share), and each of the others uses that listing once:
each still plans and applies only its own scope, and scopes on one target never overlap
(validation refuses it), so one sync's writes never make the listing stale for another. A
destination whose listing does not include soft-deleted entries (Key Vault finds those only
by name) is asked, per sync, for just the pending-deletion entries of that sync's names. A
shared listing is served to each member once, and only for ``ttl`` seconds; anything else
lists for itself. Another *process* may run a member between the listing and that member's
lock (replicas, an ``apply`` beside the daemon): the member checks the shared entries against
its own record, read under its lock, and lists for itself when they disagree.
"""

from __future__ import annotations

import bisect
import builtins
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reconciler.destinations.contract import Scope, Session
from reconciler.model import ObservedEntry

Member = tuple[str, str, Scope]  # (sync, target id, scope)


@dataclass
class _Shared:
    prefix: str
    pending: set[str]
    expires: float
    #: the listing, sorted by folded key, and those keys: each member takes its own slice
    entries: list[ObservedEntry] | None = None
    keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fill(self, listed: list[ObservedEntry], fold: Callable[[str], str]) -> None:
        pairs = sorted(((fold(e.key), e) for e in listed), key=lambda p: p[0])
        self.keys = [k for k, _ in pairs]
        self.entries = [e for _, e in pairs]

    def under(self, prefix: str) -> list[ObservedEntry]:
        """The entries whose folded key starts with ``prefix`` (a binary search, not a scan:
        with a thousand syncs on one target, each would otherwise walk every entry)."""
        assert self.entries is not None
        lo = hi = bisect.bisect_left(self.keys, prefix)
        while hi < len(self.keys) and self.keys[hi].startswith(prefix):
            hi += 1
        return self.entries[lo:hi]

    def has(self, key: str) -> bool:
        i = bisect.bisect_left(self.keys, key)
        return i < len(self.keys) and self.keys[i] == key


class Listings:
    """Shared listings by target id; thread-safe (the daemon's runs share one)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._by_target: dict[str, _Shared] = {}
        self._lock = threading.Lock()

    def share(self, members: Iterable[Member]) -> list[str]:
        """Announce syncs about to run together; targets of two or more of them get a shared
        listing. Returns those targets."""
        groups: dict[str, list[tuple[str, Scope]]] = {}
        for sync, target, scope in members:
            groups.setdefault(target, []).append((sync, scope))
        now = time.monotonic()
        shared = [t for t, m in groups.items() if len(m) > 1]
        with self._lock:
            for t in shared:
                # character by character on purpose: a listing prefix, not a path
                prefix = os.path.commonprefix([s.list_prefix for _, s in groups[t]])  # noqa: RUF071
                self._by_target[t] = _Shared(prefix, {name for name, _ in groups[t]}, now + self.ttl)
        return shared

    def drop(self, sync: str) -> None:
        """``sync`` will not run after all (another replica holds it): it must not find a
        listing kept for it when it runs later."""
        with self._lock:
            for target, shared in list(self._by_target.items()):
                shared.pending.discard(sync)
                if not shared.pending:
                    del self._by_target[target]

    def forget(self, targets: Iterable[str]) -> None:
        with self._lock:
            for t in targets:
                self._by_target.pop(t, None)

    def list(self, sync: str, target: str, session: Session, scope: Scope, fold: Callable[[str], str],
             agrees: Callable[[list[ObservedEntry]], bool] | None = None) -> list[ObservedEntry]:
        """This sync's entries: from the shared listing, unless ``agrees`` (the sync's own
        record of what it wrote, read under its lock) finds the shared one stale for it — another
        process (a replica, an ``apply``) ran the sync after the listing was taken — then listed
        afresh. A destination changed out of band costs one listing more."""
        got = self._list(sync, target, session, scope, fold)
        if got is None:
            return session.list(scope)
        entries, fresh = got  # fresh: listed just now, under this sync's lock
        if not fresh and agrees is not None and not agrees(entries):
            return session.list(scope)
        return entries

    def _list(self, sync: str, target: str, session: Session, scope: Scope,
              fold: Callable[[str], str]) -> tuple[builtins.list[ObservedEntry], bool] | None:
        """From the shared listing, and whether this call listed it (None: none for this sync)."""
        with self._lock:
            shared = self._by_target.get(target)
            if shared is not None and (sync not in shared.pending or time.monotonic() > shared.expires):
                if time.monotonic() > shared.expires:
                    del self._by_target[target]
                shared = None
        if shared is None:
            return None
        with shared.lock:
            first = shared.entries is None
            if first:
                shared.fill(session.list(Scope(base=shared.prefix, wanted=scope.wanted)), fold)
        with self._lock:
            shared.pending.discard(sync)
            if not shared.pending and self._by_target.get(target) is shared:
                del self._by_target[target]
        mine = shared.under(fold(scope.list_prefix))
        if first:
            return mine, True
        missing = frozenset(n for n in scope.wanted if not shared.has(fold(n)))
        extra = session.list(Scope(exact=missing, wanted=missing, pending_only=True)) if missing else []
        return [*mine, *extra], False
