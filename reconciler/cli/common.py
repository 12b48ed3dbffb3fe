"""What the commands share: loading specs, opening state, choosing syncs, reporting outcomes,
and Ctrl-C during a run that writes."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

# the exit codes, for the commands (the parser owns them: --help says them)
from reconciler.cli.parser import EXIT_CHANGES as EXIT_CHANGES
from reconciler.cli.parser import EXIT_ERROR as EXIT_ERROR
from reconciler.cli.parser import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from reconciler.cli.parser import EXIT_OK as EXIT_OK


def get_logger(**bound: Any) -> Any:
    """structlog, imported only once a command runs: ``--help`` and argument errors need none."""
    from reconciler.logging import get_logger as _get

    return _get(**bound)


def default_dir() -> str:
    return os.environ.get("RECONCILER_SPECS", ".")


def default_state_dir() -> Path:
    for var in ("RECONCILER_STATE_DIR", "STATE_DIRECTORY"):
        v = os.environ.get(var)
        if v:
            return Path(v.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "reconciler"


def use_color(stream: TextIO, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def print_diagnostics(diagnostics: Sequence[Any], stream: TextIO) -> None:
    for d in diagnostics:
        prefix = "warning: " if getattr(d, "severity", "error") == "warning" else ""
        print(f"{prefix}{d}", file=stream)


def load_specs(args: argparse.Namespace, *, log_events: bool = True) -> Any:
    """The spec directory, its diagnostics printed. ``log_events`` also logs them as events
    (``validate`` prints them and nothing else: it never imports the logging stack)."""
    from reconciler.specs.loader import load

    directory = Path(args.dir or default_dir())
    specs = load(directory)
    if specs.diagnostics:
        print_diagnostics(specs.diagnostics, sys.stderr)
    if log_events:
        log = get_logger()
        for name, diags in specs.invalid_syncs.items():
            log.warning("spec.invalid", sync=name, diagnostics=len(diags))
        log.debug("spec.loaded", syncs=len(specs.syncs), connections=len(specs.connections))
    return specs



def select(specs: Any, names: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Syncs to act on, and errors for names that are unknown or invalid."""
    errors: list[str] = []
    if not names:
        return [specs.syncs[n] for n in sorted(specs.syncs)], errors
    chosen = []
    for n in dict.fromkeys(names):  # a name given twice is one sync, run once
        if n in specs.syncs:
            chosen.append(specs.syncs[n])
        elif n in specs.invalid_syncs:
            errors.append(f"sync {n!r} is invalid (see the diagnostics above); nothing was done for it")
        else:
            errors.append(f"no sync named {n!r} in {specs.root}")
    return chosen, errors


def state_location(args: argparse.Namespace) -> Any:
    """The state the flags and environment point at (checked: no literal password in a URL)."""
    from reconciler.state.location import StateLocation

    url = getattr(args, "state_url", None) or os.environ.get("RECONCILER_STATE_URL") or None
    key = getattr(args, "state_key_file", None) or os.environ.get("RECONCILER_STATE_KEY_FILE") or None
    loc = StateLocation(args.state_dir or default_state_dir(), url, Path(key) if key else None)
    loc.check()
    return loc


def open_state(args: argparse.Namespace, *, readonly: bool) -> Any:
    return state_location(args).open(readonly=readonly)


def target_of(specs: Any, sync: Any) -> str:
    """Where a sync writes, for people (the descriptor's ``describe``); "" if it cannot say."""
    from reconciler.specs.scopes import describe_target

    try:
        return describe_target(sync, specs.connections.get(sync.connection))
    except Exception:  # a description is a courtesy: never the reason a plan fails
        return ""


def imported(out: Any, specs: Any) -> str | None:
    """Which keys an import wrote into which file (or KMS folder): the user's file changed."""
    from reconciler.changes import Action

    keys = [r.change.key for r in out.results if r.ok and r.change.action is Action.IMPORT]
    sync = specs.syncs.get(out.sync) if keys and specs is not None else None
    if sync is None:
        return None
    conn = specs.connections.get(sync.source)
    where = str(conn.path) if conn is not None and conn.path is not None else f"source {sync.source}"
    shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
    return f"  < imported {shown} into {where} ({sync.environment}:{sync.secret_path})"


def report(outcomes: Sequence[Any], verb: str, specs: Any = None) -> int:
    from reconciler.engine.report import lines  # the same lines `reconciler trigger` prints

    code = EXIT_OK
    for out in outcomes:
        text = lines(out)
        wrote = None if out.error else imported(out, specs)
        print("\n".join([text[0], *([wrote] if wrote else []), *text[1:]]))
        if out.failed:
            code = EXIT_ERROR
    total_failed = sum(1 for o in outcomes if o.failed)
    print(f"{verb} complete: {len(outcomes) - total_failed} succeeded, {total_failed} failed.")
    return code


@contextlib.contextmanager
def interruptible(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM during a run that writes: start no new write, let the ones in flight
    finish and be recorded, then exit non-zero. A second Ctrl-C stops at once."""

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\ninterrupt: finishing the writes in flight and starting no new ones "
              "(press Ctrl-C again to stop at once)", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (tests drive the CLI from others)
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def one_sync(args: argparse.Namespace) -> tuple[Any, Any] | None:
    specs = load_specs(args)
    syncs, errors = select(specs, [args.name])
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors or not syncs:
        return None
    return specs, syncs[0]
