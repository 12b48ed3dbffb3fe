"""Deletion guards: the checks that stand between a bad source read and an empty vault.

Argo CD's ``allowEmpty`` and users' requests for a "max number of resources deleted" are
the model. A guard never trims a delete list to fit: a plan that deletes *some* of what
a broken source omitted is worse than one that deletes nothing and says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reconciler.changes import Change, PlanIssue
from reconciler.planning.options import PlanOptions


def delete_limit(max_deletes: tuple[float, bool] | None, in_scope_count: int) -> int | None:
    """The number of deletes allowed, or None for the default rule.

    A percentage is of ``in_scope_count``, rounded down (25% of 3 keys allows 0). Nonsense
    (negative, NaN, infinite) allows nothing rather than raising: plan() never fails.
    """
    if max_deletes is None:
        return None
    n, is_percent = max_deletes
    if not math.isfinite(n) or n < 0:
        return 0
    if is_percent:
        # a small epsilon keeps 100% of N at N despite binary fractions
        return min(in_scope_count, math.floor(in_scope_count * n / 100 + 1e-9))
    return math.floor(n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def guard_deletes(
    deletes: Sequence[Change], *, in_scope_count: int, arriving: int = 0, inventory_count: int,
    options: PlanOptions,
) -> tuple[tuple[Change, ...], tuple[PlanIssue, ...]]:
    """Deletes allowed to proceed (all or none) and the error explaining a refusal.

    ``in_scope_count`` are the in-scope keys present now, ``arriving`` the keys this apply
    creates or restores.

    - ``disable_deletion``: nothing is deleted and nothing is said (the user asked for it).
    - A source that returned nothing while the inventory remembers keys is treated as a
      failed read: no deletes. With an empty inventory the ordinary limit still applies.
    - Default: refuse only an apply that would leave the scope empty — every in-scope key
      deleted and nothing created or kept. Replacing a stray while creating ten keys is a
      normal first sync; emptying a scope takes an explicit ``maxDeletes: 100%``.
    - ``maxDeletes`` caps the deletes as a count, or as a percentage of the in-scope keys
      after the apply's creates (present + arriving).
    - An error is raised only when there were deletes to refuse: a guard that blocked
      nothing would only make the plan fail.
    """
    if options.disable_deletion or not deletes:
        return (), ()
    count = len(deletes)
    if options.source_empty and inventory_count:
        return (), (
            PlanIssue(
                f"source returned no secrets but {_plural(inventory_count, 'key')} "
                f"{'was' if inventory_count == 1 else 'were'} synced before; "
                f"refusing to delete {_plural(count, 'key')}"
            ),
        )
    total = in_scope_count + arriving
    limit = delete_limit(options.max_deletes, total)
    if limit is None:
        if count >= in_scope_count > 0 and not arriving:
            return (), (
                PlanIssue(
                    f"refusing to delete all {_plural(in_scope_count, 'in-scope key')} "
                    f"({count} deletes), which would leave this sync's scope empty; "
                    "set reconcile.maxDeletes: 100% to allow emptying the destination"
                ),
            )
        return tuple(deletes), ()
    if count > limit:
        return (), (
            PlanIssue(
                f"{_plural(count, 'delete')} {'exceeds' if count == 1 else 'exceed'} maxDeletes: "
                f"limit is {limit} of "
                f"{_plural(total, 'in-scope key')}; refusing to delete any"
            ),
        )
    return tuple(deletes), ()
