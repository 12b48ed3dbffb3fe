"""Whether two syncs could both claim one destination key.

Two syncs that own overlapping keys on the same target delete each other's secrets
(upstream issue #4318). Target identity and scope come from the destination's descriptor
and the shared naming module, folded the way the destination compares names. Scope follows
:func:`reconciler.keyschema.matches` exactly, so the overlap test below is exact rather than
a heuristic: if any key lies in both scopes, one lies in a small finite candidate set, and
we test membership with ``Scope.contains`` itself.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from reconciler.destinations import catalog, naming
from reconciler.destinations.naming import Scope
from reconciler.specs.model import Connection, SecretSync

Shape = tuple[str, str] | frozenset[str]


def overlaps(a: Scope, b: Scope) -> bool:
    """Whether some key is in both scopes.

    Every member of a pattern scope starts with its prefix and ends with its suffix, and any
    further characters in the middle only make membership harder (length is already met, and
    the ``/`` rules only count slashes). So a common key exists iff one of: longest prefix +
    longest suffix, or the two glued over a shared overlap, is in both.
    """
    return _overlaps(a, a.shape(), b, b.shape())


def _overlaps(a: Scope, sa: Shape, b: Scope, sb: Shape) -> bool:
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
    """Pairs of sync names (sorted) whose scopes overlap on the same target.

    Near-linear: syncs are grouped by target, each scope is computed once, and only pairs
    an index on literal prefixes says could share a key are tested — two pattern scopes can
    only meet when one's prefix starts the other's, and an exact name only meets the
    scopes whose prefix starts it.
    """
    by_target: dict[tuple[str, ...], list[SecretSync]] = {}
    for s in syncs.values():
        by_target.setdefault(target(s, connections.get(s.connection)), []).append(s)
    pairs: set[tuple[str, str]] = set()
    for group in by_target.values():
        pairs |= _group_overlaps({s.name: scope(s, connections.get(s.connection)) for s in group})
    return sorted(pairs)


def _group_overlaps(scopes: Mapping[str, Scope]) -> set[tuple[str, str]]:
    shapes = {name: sc.shape() for name, sc in scopes.items()}
    by_prefix: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    for name, shape in shapes.items():
        if isinstance(shape, frozenset):
            for key in shape:
                members.setdefault(key, []).append(name)
        else:
            by_prefix.setdefault(shape[0], []).append(name)
    prefixes = sorted(by_prefix)

    def starting(text: str) -> list[str]:
        """Pattern syncs whose prefix starts ``text`` (every prefix of it, looked up)."""
        return [n for i in range(len(text) + 1) for n in by_prefix.get(text[:i], ())]

    def extending(prefix: str) -> list[str]:
        """Pattern syncs whose prefix starts with ``prefix`` (a range of the sorted list)."""
        lo = bisect.bisect_left(prefixes, prefix)
        hi = lo
        while hi < len(prefixes) and prefixes[hi].startswith(prefix):
            hi += 1
        return [n for p in prefixes[lo:hi] for n in by_prefix[p]]

    found: set[tuple[str, str]] = set()

    def test(a: str, b: str) -> None:
        pair = (a, b) if a < b else (b, a)
        if a != b and pair not in found and _overlaps(scopes[a], shapes[a], scopes[b], shapes[b]):
            found.add(pair)

    for name, shape in shapes.items():
        if isinstance(shape, frozenset):
            for key in shape:
                for other in (*members[key], *starting(key)):
                    test(name, other)
        else:
            for other in (*starting(shape[0]), *extending(shape[0])):
                test(name, other)
    return found


def describe_target(sync: SecretSync, connection: Connection | None = None) -> str:
    return catalog.default()[sync.destination].describe(sync.view(connection))
