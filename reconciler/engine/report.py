"""The lines a person reads about one sync's run: what ``apply`` prints, and what
``reconciler trigger`` prints for a run the daemon made. One function, so both say the same."""

from __future__ import annotations

from reconciler.changes import Action
from reconciler.destinations.contract import NOT_STARTED
from reconciler.engine.outcome import Outcome, failures, not_started
from reconciler.printable import one_line


def summary(out: Outcome) -> str:
    """``1 created, 0 updated, 0 deleted`` (and restored, imported, failed when any)."""
    if not out.results:
        return "no changes"
    ok = [r for r in out.results if r.ok]
    counts = {a: sum(1 for r in ok if r.change.action is a) for a in Action}
    parts = [f"{counts[Action.CREATE]} created", f"{counts[Action.UPDATE]} updated",
             f"{counts[Action.DELETE]} deleted"]
    if counts[Action.RESTORE]:
        parts.append(f"{counts[Action.RESTORE]} restored")
    if counts[Action.IMPORT]:
        parts.append(f"{counts[Action.IMPORT]} imported")
    failed, stopped = len(failures(out)), not_started(out)
    if failed:
        parts.append(f"{failed} failed")
    if stopped:
        parts.append(f"{stopped} not started")
    return ", ".join(parts)


def lines(out: Outcome) -> list[str]:
    """The summary line of one sync, then one ``  ! ...`` line per failed change or issue
    (each one line: an error may quote a path from a spec)."""
    return [one_line(line) for line in _lines(out)]


def _lines(out: Outcome) -> list[str]:
    if out.error:
        return [f"{out.sync}: failed: {out.error}"]
    line = f"{out.sync}: {summary(out)}"
    if out.plan is not None and out.plan.drift:
        line += f"; {len(out.plan.drift)} drifted (reported, not corrected)"
    found = [line]
    found += [f"  ! {r.change.action.value} {r.change.key}: {r.error}" for r in failures(out)]
    stopped = not_started(out)
    if stopped:
        found.append(f"  ! {stopped} {'change' if stopped == 1 else 'changes'} {NOT_STARTED}")
    if out.plan is not None:
        for issue in out.plan.issues:
            where = f"{issue.key}: " if issue.key else ""
            found.append(f"  ! {issue.severity}: {where}{issue.message}")
    return found
