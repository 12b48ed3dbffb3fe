"""Whether two syncs could both claim one destination key.

Two syncs that own overlapping keys on the same target delete each other's secrets
(upstream issue #4318). Target identity and scope come from the destination's descriptor
and the shared naming module, folded the way the destination compares names. Scope follows
:func:`reconciler.keyschema.matches` exactly, so the overlap test below is exact rather than
a heuristic: if any key lies in both scopes, one lies in a small finite candidate set, and
we test membership with ``Scope.contains`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

from reconciler.destinations import catalog, naming
from reconciler.destinations.naming import Scope
from reconciler.specs.model import Connection, SecretSync


def overlaps(a: Scope, b: Scope) -> bool:
    """Whether some key is in both scopes.

    Every member of a pattern scope starts with its prefix and ends with its suffix, and any
    further characters in the middle only make membership harder (length is already met, and
    the ``/`` rules only count slashes). So a common key exists iff one of: longest prefix +
    longest suffix, or the two glued over a shared overlap, is in both.
    """
    sa, sb = a.shape(), b.shape()
    if isinstance(sa, frozenset):
        return any(b.contains(k) for k in sa)
    if isinstance(sb, frozenset):
        return any(a.contains(k) for k in sb)
    (pa, xa), (pb, xb) = sa, sb
    if not (pa.startswith(pb) or pb.startswith(pa)) or not (xa.endswith(xb) or xb.endswith(xa)):
        return False
    p, s = max(pa, pb, key=len), max(xa, xb, key=len)
    candidates = [p + s] + [p + s[o:] for o in range(1, min(len(p), len(s)) + 1) if p.endswith(s[:o])]
    return any(a.contains(k) and b.contains(k) for k in candidates)


def target(sync: SecretSync, connection: Connection | None) -> tuple[str, ...]:
    """What a sync writes into; syncs with different targets can never collide."""
    return catalog.default()[sync.destination].identity(sync.view(connection))


def scope(sync: SecretSync, connection: Connection | None = None) -> Scope:
    """The sync's scope in destination names, folded as the destination compares them."""
    desc = catalog.default()[sync.destination]
    return naming.scope(desc, sync.view(connection), fold=True)


def find_overlaps(
    syncs: Mapping[str, SecretSync], connections: Mapping[str, Connection]
) -> list[tuple[str, str]]:
    """Pairs of sync names (sorted) whose scopes overlap on the same target."""
    by_target: dict[tuple[str, ...], list[SecretSync]] = {}
    for s in syncs.values():
        by_target.setdefault(target(s, connections.get(s.connection)), []).append(s)
    pairs: list[tuple[str, str]] = []
    for group in by_target.values():
        ordered = sorted(group, key=lambda s: s.name)
        computed = {s.name: scope(s, connections.get(s.connection)) for s in ordered}
        for a, b in combinations(ordered, 2):
            if overlaps(computed[a.name], computed[b.name]):
                pairs.append((a.name, b.name))
    return pairs


def describe_target(sync: SecretSync, connection: Connection | None = None) -> str:
    return catalog.default()[sync.destination].describe(sync.view(connection))
