"""``plan --out FILE`` and ``apply --plan FILE``: the command side of saved plans (the
file format and the staleness rule live in :mod:`reconciler.engine.savedplan`)."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from typing import Any

from reconciler.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, interruptible, load_specs, open_state, report


def save_plan(args: argparse.Namespace, specs: Any, state: Any, plans: Sequence[Any], failed: bool) -> bool:
    """Write ``--out``: only a plan without errors, and only the syncs `apply` would run."""
    from reconciler.engine import savedplan

    if failed:
        print(f"error: the plan has errors; no plan file was written to {args.out}", file=sys.stderr)
        return False
    explicit = set(args.sync)
    kept = [p for p in plans if specs.syncs[p.sync].is_auto_sync_enabled or p.sync in explicit]
    for p in plans:
        if not specs.syncs[p.sync].is_auto_sync_enabled and p.sync not in explicit:
            print(f"note: {p.sync} is not in the saved plan (isAutoSyncEnabled: false; plan it with --sync)",
                  file=sys.stderr)
    savedplan.write(args.out, savedplan.build(kept, specs, args.sync, state.fingerprinter))
    print(f"Saved the plan to {args.out}; apply exactly this plan with: reconciler apply --plan {args.out}",
          file=sys.stderr)
    return True


def apply_saved(args: argparse.Namespace) -> int:
    from reconciler.engine import savedplan
    from reconciler.engine.reconcile import Reconciler
    from reconciler.errors import ReconcilerError

    if args.sync:
        print("error: --plan applies the syncs its plan was made for; it cannot be combined with --sync",
              file=sys.stderr)
        return EXIT_ERROR
    specs = load_specs(args)
    if not specs.ok:
        print(f"error: the specs are invalid; plan {args.plan_file} is stale, nothing was applied", file=sys.stderr)
        return EXIT_ERROR
    stop = threading.Event()
    state = open_state(args, readonly=False)
    try:
        saved = savedplan.read(args.plan_file, state.fingerprinter)
        with interruptible(stop):
            outcomes = savedplan.apply_saved(Reconciler(specs, state, stop=stop), saved, str(args.plan_file))
    except ReconcilerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        state.close()
    code = report(outcomes, "Apply")
    if stop.is_set():
        print("Interrupted: the writes in flight finished and are recorded; the rest of the plan was not "
              "started (it is stale now: plan again).", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


