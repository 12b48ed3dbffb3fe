"""``remove NAME``: show what will be deleted, confirm on a terminal (or require ``--yes``
without one), then delete exactly what was shown; ``--dry-run`` only shows."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    interruptible,
    one_sync,
    open_state,
    report,
    use_color,
)


def _confirmed(count: int, target: str) -> bool | None:
    """Ask on a terminal; None when there is none to ask on."""
    try:
        interactive = sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        interactive = False
    if not interactive:
        return None
    try:
        answer = input(f"Delete these {count} secret(s) from {target}? Only 'yes' is accepted: ")
    except EOFError:  # the terminal closed: that is not a yes
        print()
        return False
    return answer.strip() == "yes"


def remove(args: argparse.Namespace) -> int:
    """Show what will be deleted, confirm (terminal) or require --yes, then delete exactly that."""
    from reconciler.engine.reconcile import Reconciler
    from reconciler.planning.render import render_text

    found = one_sync(args)
    if found is None:
        return EXIT_ERROR
    specs, sync = found
    state = open_state(args, readonly=args.dry_run)
    try:
        rec = Reconciler(specs, state)
        preview = rec.plan_remove_sync(sync)
        if preview.error is not None or preview.plan is None:
            return report([preview], "Remove")
        plan = preview.plan
        if plan.changes or plan.issues:
            sys.stdout.write(render_text([plan], color=use_color(sys.stdout, args.color)))
        else:
            print(f"Nothing of sync {sync.name} to remove at {plan.target or sync.destination}.")
        if args.dry_run:
            print("Dry run: nothing was deleted.")
            return EXIT_OK
        if plan.changes and not args.yes:
            ok = _confirmed(len(plan.changes), plan.target or sync.destination)
            if ok is None:
                print("error: remove deletes secrets; without a terminal to confirm on, pass --yes "
                      "(nothing was deleted)", file=sys.stderr)
                return EXIT_ERROR
            if not ok:
                print("Remove cancelled; nothing was deleted.")
                return EXIT_ERROR
        shown = [(c.action, c.key) for c in plan.changes]
        with interruptible(rec.stop):
            out = rec.remove_sync(sync, expect=lambda p: None if [(c.action, c.key) for c in p.changes] == shown
                                  else "the destination changed since it was shown; nothing was deleted "
                                       "(run remove again to see the new list)")
        code = report([out], "Remove")
        return EXIT_INTERRUPTED if rec.stop.is_set() else code
    finally:
        state.close()


