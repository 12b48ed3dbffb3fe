"""Command line: thin commands, exit codes, choice of output. No reconcile logic lives here.

Exit codes (pinned): validate 0 valid / 1 invalid; plan 0 ok / 1 error / 2 changes pending
(only with --detailed-exitcode, as Terraform); apply 0 all applied / 1 any failure.
Results go to stdout, logs and diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from reconciler import __version__


def get_logger(**bound: Any) -> Any:
    """structlog, imported only once a command runs: ``--help`` and argument errors need none."""
    from reconciler.logging import get_logger as _get

    return _get(**bound)

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_INTERRUPTED = 130


def _default_dir() -> str:
    return os.environ.get("RECONCILER_SPECS", ".")


def default_state_dir() -> Path:
    for var in ("RECONCILER_STATE_DIR", "STATE_DIRECTORY"):
        v = os.environ.get(var)
        if v:
            return Path(v.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "reconciler"


def _use_color(stream: TextIO, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which is "changes pending" under --detailed-exitcode."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=None,
                        help="state directory (default: $RECONCILER_STATE_DIR, $STATE_DIRECTORY, "
                             "or $XDG_STATE_HOME/reconciler)")
    common.add_argument("--log-format", choices=("console", "json"), default=None,
                        help="log format on stderr (default: console; json under run)")
    common.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"))
    common.add_argument("--no-color", dest="color", action="store_false", default=None,
                        help="never colour output (NO_COLOR is honoured too)")

    p = _Parser(
        prog="reconciler",
        description="Keep secret stores converged on specs.",
        epilog="Exit codes: 0 ok, 1 error (invalid specs, a failed sync), 2 changes pending "
        "(plan --detailed-exitcode only).",
    )
    dir_help = "spec directory (default: $RECONCILER_SPECS or .)"
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", parents=[common], help="check specs (schema + rules)")
    v.add_argument("dir", nargs="?", default=None, help=dir_help)

    for name, help_ in (("plan", "show what apply would change"), ("apply", "apply the plan once")):
        c = sub.add_parser(name, parents=[common], help=help_)
        c.add_argument("dir", nargs="?", default=None, help=dir_help)
        c.add_argument("--sync", action="append", default=[], metavar="NAME", help="only this sync (repeatable)")
        if name == "plan":
            c.add_argument("--json", action="store_true", help="print the plan as one JSON object")
            c.add_argument("--detailed-exitcode", action="store_true",
                           help="exit 2 when changes are pending (0 none, 1 error)")

    s = sub.add_parser("status", parents=[common], help="last result per sync")
    s.add_argument("--json", action="store_true")

    i = sub.add_parser("import", parents=[common], help="import destination secrets into the source, then sync")
    i.add_argument("name", help="the SecretSync to import for")
    i.add_argument("dir", nargs="?", default=None, help=dir_help)
    i.add_argument("--priority", choices=("source", "destination"), default=None,
                   help="who wins a conflicting key (default: the sync's initialSyncBehavior, else source)")

    r = sub.add_parser("remove", parents=[common], help="delete this sync's secrets from the destination")
    r.add_argument("name", help="the SecretSync whose destination secrets to delete")
    r.add_argument("dir", nargs="?", default=None, help=dir_help)

    d = sub.add_parser("run", parents=[common], help="the daemon: reconcile on start, on change, on a schedule",
                       epilog="Exits 0 after SIGTERM/SIGINT (graceful stop); SIGHUP reloads every spec.")
    d.add_argument("dir", nargs="?", default=None, help=dir_help)
    d.add_argument("--listen", default=os.environ.get("RECONCILER_LISTEN", "127.0.0.1:9464"), metavar="HOST:PORT",
                   help="health, metrics and webhook server (default: $RECONCILER_LISTEN or 127.0.0.1:9464; "
                        "'off' disables it)")
    d.add_argument("--workers", type=int, default=4, help="syncs reconciled at once (default 4)")
    d.add_argument("--per-connection", type=int, default=2,
                   help="syncs reconciled at once per destination connection (default 2)")
    d.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, wait this long for reconciles in progress (default 30)")
    return p


def _print_diagnostics(diagnostics: Sequence[Any], stream: TextIO) -> None:
    for d in diagnostics:
        prefix = "warning: " if getattr(d, "severity", "error") == "warning" else ""
        print(f"{prefix}{d}", file=stream)


def _load(args: argparse.Namespace) -> Any:
    from reconciler.specs.loader import load

    directory = Path(args.dir or _default_dir())
    specs = load(directory)
    log = get_logger()
    if specs.diagnostics:
        _print_diagnostics(specs.diagnostics, sys.stderr)
    for name, diags in specs.invalid_syncs.items():
        log.warning("spec.invalid", sync=name, diagnostics=len(diags))
    log.debug("spec.loaded", syncs=len(specs.syncs), connections=len(specs.connections))
    return specs


def _select(specs: Any, names: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Syncs to act on, and errors for names that are unknown or invalid."""
    errors: list[str] = []
    if not names:
        return [specs.syncs[n] for n in sorted(specs.syncs)], errors
    chosen = []
    for n in names:
        if n in specs.syncs:
            chosen.append(specs.syncs[n])
        elif n in specs.invalid_syncs:
            errors.append(f"sync {n!r} is invalid (see the diagnostics above); nothing was done for it")
        else:
            errors.append(f"no sync named {n!r} in {specs.root}")
    return chosen, errors


def cmd_validate(args: argparse.Namespace) -> int:
    specs = _load(args)
    if specs.ok:
        print(f"Valid: {len(specs.syncs)} sync(s), {len(specs.connections)} connection(s) in {specs.root}.")
        return EXIT_OK
    errors = sum(1 for d in specs.diagnostics if d.severity == "error")
    print(f"Invalid: {errors} error(s) in {specs.root}.", file=sys.stderr)
    return EXIT_ERROR


def _state(args: argparse.Namespace, *, readonly: bool) -> Any:
    from reconciler.state.store import StateStore

    return StateStore(args.state_dir or default_state_dir(), readonly=readonly)


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler
    from reconciler.planning.render import PlanError, render_json, render_text

    specs = _load(args)
    syncs, errors = _select(specs, args.sync)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    state = _state(args, readonly=True)
    rec = Reconciler(specs, state)
    rendered: list[Any] = []
    failed = bool(errors) or not specs.ok
    for sync in syncs:
        if not sync.is_enabled:
            print(f"note: sync {sync.name} is disabled (isEnabled: false); not planned", file=sys.stderr)
    with rec.sharing(s for s in syncs if s.is_enabled):
        planned = [(s, rec.plan_sync(s)) for s in syncs if s.is_enabled]
    for sync, out in planned:
        if out.error is not None or out.plan is None:
            rendered.append(PlanError(sync.name, sync.destination, out.error or "no plan"))
            failed = True
        else:
            rendered.append(out.plan)
            failed = failed or bool(out.plan.errors)
    state.close()
    if args.json:
        print(json.dumps(render_json(rendered), indent=2))
    else:
        sys.stdout.write(render_text(rendered, color=_use_color(sys.stdout, args.color)))
    if failed:
        return EXIT_ERROR
    pending = any(getattr(p, "has_changes", False) for p in rendered)
    return EXIT_CHANGES if (args.detailed_exitcode and pending) else EXIT_OK


def _summary(out: Any) -> str:
    from reconciler.model import Action

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
    failed = len(out.results) - len(ok)
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


def _imported(out: Any, specs: Any) -> str | None:
    """Which keys an import wrote into which file (or KMS folder): the user's file changed."""
    from reconciler.model import Action

    keys = [r.change.key for r in out.results if r.ok and r.change.action is Action.IMPORT]
    sync = specs.syncs.get(out.sync) if keys and specs is not None else None
    if sync is None:
        return None
    conn = specs.connections.get(sync.source)
    where = str(conn.path) if conn is not None and conn.path is not None else f"source {sync.source}"
    shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
    return f"  < imported {shown} into {where} ({sync.environment}:{sync.secret_path})"


def _report(outcomes: Sequence[Any], verb: str, specs: Any = None) -> int:
    code = EXIT_OK
    for out in outcomes:
        if out.error:
            print(f"{out.sync}: failed: {out.error}")
            code = EXIT_ERROR
            continue
        line = f"{out.sync}: {_summary(out)}"
        if out.plan is not None and out.plan.drift:
            line += f"; {len(out.plan.drift)} drifted (reported, not corrected)"
        print(line)
        imported = _imported(out, specs)
        if imported:
            print(imported)
        for r in out.results:
            if not r.ok:
                print(f"  ! {r.change.action.value} {r.change.key}: {r.error}")
        if out.plan is not None:
            for issue in out.plan.issues:
                where = f"{issue.key}: " if issue.key else ""
                print(f"  ! {issue.severity}: {where}{issue.message}")
        if out.failed:
            code = EXIT_ERROR
    total_failed = sum(1 for o in outcomes if o.failed)
    print(f"{verb} complete: {len(outcomes) - total_failed} succeeded, {total_failed} failed.")
    return code


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler

    specs = _load(args)
    syncs, errors = _select(specs, args.sync)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    outcomes = []
    explicit = set(args.sync)
    runnable = [s for s in syncs if s.is_enabled and (s.is_auto_sync_enabled or s.name in explicit)]
    for s in syncs:
        if s not in runnable:
            if s.name in explicit:  # asked for by name: not applying it is a failure, not a note
                print(f"error: sync {s.name} is disabled (isEnabled: false); nothing was done for it",
                      file=sys.stderr)
                errors.append(s.name)
                continue
            why = "isEnabled: false" if not s.is_enabled else "isAutoSyncEnabled: false; use --sync to apply it"
            print(f"note: skipping {s.name} ({why})", file=sys.stderr)
    stop = threading.Event()
    if runnable:
        state = _state(args, readonly=False)
        rec = Reconciler(specs, state, stop=stop)
        with _interruptible(stop), rec.sharing(runnable):
            for s in runnable:
                if stop.is_set():
                    print(f"{s.name}: not started (interrupted)")
                    continue
                outcomes.append(rec.apply_sync(s))
        state.close()
    code = _report(outcomes, "Apply", specs)
    if stop.is_set():
        print("Interrupted: the writes in flight finished and are recorded; nothing else was started.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR if (errors or not specs.ok) else code


@contextlib.contextmanager
def _interruptible(stop: threading.Event) -> Iterator[None]:
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


def _one(args: argparse.Namespace) -> tuple[Any, Any] | None:
    specs = _load(args)
    syncs, errors = _select(specs, [args.name])
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors or not syncs:
        return None
    return specs, syncs[0]


def cmd_import(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler

    found = _one(args)
    if found is None:
        return EXIT_ERROR
    specs, sync = found
    priority = args.priority
    if priority is None:
        behaviour = sync.initial_sync_behavior
        priority = "destination" if behaviour == "import-prioritize-destination" else "source"
    state = _state(args, readonly=False)
    stop = threading.Event()
    with _interruptible(stop):
        out = Reconciler(specs, state, stop=stop).import_sync(sync, priority)
    state.close()
    return EXIT_INTERRUPTED if stop.is_set() else _report([out], "Import", specs)


def cmd_remove(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler

    found = _one(args)
    if found is None:
        return EXIT_ERROR
    specs, sync = found
    state = _state(args, readonly=False)
    stop = threading.Event()
    with _interruptible(stop):
        out = Reconciler(specs, state, stop=stop).remove_sync(sync)
    state.close()
    code = _report([out], "Remove")
    return EXIT_INTERRUPTED if stop.is_set() else code


def cmd_status(args: argparse.Namespace) -> int:
    from reconciler.daemon.statusfile import read_live

    state = _state(args, readonly=True)
    rows = [s.as_dict() for s in state.all_status()]
    state.close()
    live = (read_live(state.directory) or {}).get("syncs", {})
    for r in rows:
        r.pop("target", None)
        planned = live.get(r["sync"]) or {}
        r["nextAttemptAt"] = planned.get("nextAttemptAt")  # only while a daemon runs
    if args.json:
        print(json.dumps({"format_version": "1", "syncs": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print("No syncs have run yet.")
        return EXIT_OK
    for r in rows:
        print(f"{r['sync']} ({r['destination']}): {r['syncStatus'] or 'never synced'}"
              f"{'  last synced ' + r['lastSyncedAt'] if r['lastSyncedAt'] else ''}")
        if r["lastSyncMessage"]:
            print(f"  message: {r['lastSyncMessage']}")
        if r["nextAttemptAt"]:
            print(f"  next attempt: {r['nextAttemptAt']} (the daemon retries with backoff)")
        for job in ("Import", "Remove"):
            st = r[f"{job.lower()}Status"]
            if st:
                at = r[f"last{job}edAt"] if job == "Import" else r["lastRemovedAt"]
                print(f"  {job.lower()}: {st}{'  at ' + at if at else ''}")
                if r[f"last{job}Message"]:
                    print(f"    message: {r[f'last{job}Message']}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from reconciler.daemon.main import run

    return run(Path(args.dir or _default_dir()), args.state_dir or default_state_dir(), listen=args.listen,
               workers=args.workers, per_connection=args.per_connection, shutdown_timeout=args.shutdown_timeout)


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "status": cmd_status,
    "import": cmd_import,
    "remove": cmd_remove,
    "run": cmd_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: return the code, as for any command
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    quiet_default = "warning" if args.command in ("validate", "plan", "status") else "info"
    from reconciler.logging import configure as configure_logging

    configure_logging(args.log_format or ("json" if args.command == "run" else "console"),
                      args.log_level or quiet_default)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last line of defence: a clear message, never a traceback
        from reconciler.state.store import StateError

        if isinstance(e, StateError | OSError):
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR
        get_logger().error("internal.error", error_type=type(e).__name__)
        print(f"error: internal error ({type(e).__name__}); re-run with --log-level debug and report it",
              file=sys.stderr)
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
