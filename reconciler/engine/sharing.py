"""One listing per destination target per run of many syncs.

When several syncs of one run write to one target (one AWS account and region, one vault,
one workspace), the first of them lists the target once, wide enough for all of them (the
longest literal prefix they share), and the others reuse that listing: each still plans and
applies only its own scope, and scopes on one target never overlap (validation refuses it),
so one sync's writes never make the listing stale for another. A destination whose listing
does not include soft-deleted entries (Key Vault finds those only by name) is asked, per
sync, for just the pending-deletion entries of that sync's names.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reconciler.destinations.contract import Scope, Session
from reconciler.model import ObservedEntry


@dataclass
class _Shared:
    prefix: str
    entries: list[ObservedEntry] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Listings:
    """Shared listings by target id, for the syncs of one run."""

    def __init__(self) -> None:
        self._by_target: dict[str, _Shared] = {}

    def share(self, members: Iterable[tuple[str, Scope]]) -> None:
        """Register (target id, scope) of every sync of the run; targets of two or more
        syncs get a shared listing."""
        groups: dict[str, list[Scope]] = {}
        for target, scope in members:
            groups.setdefault(target, []).append(scope)
        # character by character on purpose: a listing prefix, not a path
        self._by_target = {t: _Shared(os.path.commonprefix([s.list_prefix for s in scopes]))  # noqa: RUF071
                           for t, scopes in groups.items() if len(scopes) > 1}

    def clear(self) -> None:
        self._by_target = {}

    def list(self, target: str, session: Session, scope: Scope,
             fold: Callable[[str], str]) -> list[ObservedEntry]:
        shared = self._by_target.get(target)
        if shared is None:
            return session.list(scope)
        with shared.lock:
            if shared.entries is None:
                wide = Scope(base=shared.prefix, wanted=scope.wanted)
                shared.entries = session.list(wide)
                return list(shared.entries)
        listed = {fold(e.key) for e in shared.entries}
        missing = frozenset(n for n in scope.wanted if fold(n) not in listed)
        extra = session.list(Scope(exact=missing, wanted=missing, pending_only=True)) if missing else []
        return [*shared.entries, *extra]
