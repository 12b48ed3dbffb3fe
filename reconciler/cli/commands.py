"""The commands: each parses nothing and decides nothing, it calls the engine and reports."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    default_dir,
    interruptible,
    load_specs,
    one_sync,
    open_state,
    report,
    select,
    state_location,
    target_of,
    use_color,
)


def cmd_validate(args: argparse.Namespace) -> int:
    specs = load_specs(args, log_events=False)
    if specs.ok:
        print(f"Valid: {len(specs.syncs)} sync(s), {len(specs.connections)} connection(s) in {specs.root}.")
        return EXIT_OK
    errors = sum(1 for d in specs.diagnostics if d.severity == "error")
    print(f"Invalid: {errors} error(s) in {specs.root}.", file=sys.stderr)
    return EXIT_ERROR


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler
    from reconciler.planning.render import PlanError, render_json, render_text

    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        print(f"error: --json means --format json; it cannot be combined with --format {fmt}", file=sys.stderr)
        return EXIT_ERROR
    specs = load_specs(args)
    syncs, errors = select(specs, args.sync)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if args.out is not None:  # fingerprints must be under the key `apply --plan` will use
        writable = open_state(args, readonly=False)
        _ = writable.fingerprinter
        writable.close()
    state = open_state(args, readonly=True)
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
            rendered.append(PlanError(sync.name, sync.destination, out.error or "no plan", target_of(specs, sync)))
            failed = True
        else:
            rendered.append(out.plan)
            failed = failed or bool(out.plan.errors)
    if fmt == "json":
        print(json.dumps(render_json(rendered), indent=2))
    elif fmt == "markdown":
        from reconciler.planning.markdown import render_markdown

        sys.stdout.write(render_markdown(rendered))
    else:
        sys.stdout.write(render_text(rendered, color=use_color(sys.stdout, args.color), properties=True))
    if args.out is not None:
        from reconciler.cli.saved import save_plan

        failed = not save_plan(args, specs, state, rendered, failed) or failed
    state.close()
    if failed:
        return EXIT_ERROR
    pending = any(getattr(p, "has_changes", False) for p in rendered)
    return EXIT_CHANGES if (args.detailed_exitcode and pending) else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler

    if args.plan_file is not None:
        from reconciler.cli.saved import apply_saved

        return apply_saved(args)
    specs = load_specs(args)
    syncs, errors = select(specs, args.sync)
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
        state = open_state(args, readonly=False)
        rec = Reconciler(specs, state, stop=stop)
        with interruptible(stop), rec.sharing(runnable):
            for s in runnable:
                if stop.is_set():
                    print(f"{s.name}: not started (interrupted)")
                    continue
                outcomes.append(rec.apply_sync(s))
        state.close()
    code = report(outcomes, "Apply", specs)
    if stop.is_set():
        print("Interrupted: the writes in flight finished and are recorded; nothing else was started.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR if (errors or not specs.ok) else code


def cmd_import(args: argparse.Namespace) -> int:
    from reconciler.engine.reconcile import Reconciler

    found = one_sync(args)
    if found is None:
        return EXIT_ERROR
    specs, sync = found
    priority = args.priority
    if priority is None:
        behaviour = sync.initial_sync_behavior
        priority = "destination" if behaviour == "import-prioritize-destination" else "source"
    state = open_state(args, readonly=False)
    stop = threading.Event()
    with interruptible(stop):
        out = Reconciler(specs, state, stop=stop).import_sync(sync, priority)
    state.close()
    return EXIT_INTERRUPTED if stop.is_set() else report([out], "Import", specs)


def cmd_remove(args: argparse.Namespace) -> int:
    from reconciler.cli.remove import remove

    return remove(args)


def cmd_status(args: argparse.Namespace) -> int:
    from reconciler.daemon.statusfile import read_live

    if args.dir is not None:
        from reconciler.cli.status import status_of_specs

        return status_of_specs(args)
    if args.sync:
        print("error: --sync needs the spec directory: reconciler status DIR --sync NAME", file=sys.stderr)
        return EXIT_ERROR
    location = state_location(args)
    state = location.open(readonly=True)
    rows = [s.as_dict() for s in state.all_status()]
    held = state.holders([r["sync"] for r in rows])  # replicas sharing a PostgreSQL state
    state.close()
    live = (read_live(location.directory) or {}).get("syncs", {})
    for r in rows:
        r.pop("target", None)
        planned = live.get(r["sync"]) or {}
        r["nextAttemptAt"] = planned.get("nextAttemptAt")  # only while a daemon runs
        if held:
            r["heldBy"] = held.get(r["sync"])
    if args.json:
        print(json.dumps({"format_version": "1", "syncs": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print("No syncs have run yet.")
        return EXIT_OK
    for r in rows:
        print(f"{r['sync']} ({r['destination']}): {r['syncStatus'] or 'never synced'}"
              f"{'  last synced ' + r['lastSyncedAt'] if r['lastSyncedAt'] else ''}")
        if r["lastSyncMessage"]:  # one line: it may quote a path from a spec
            from reconciler.printable import one_line

            print(f"  message: {one_line(r['lastSyncMessage'])}")
        if r.get("heldBy"):
            print(f"  held by replica {r['heldBy']}")
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

    return run(Path(args.dir or default_dir()), state_location(args), listen=args.listen,
               workers=args.workers, per_connection=args.per_connection, shutdown_timeout=args.shutdown_timeout,
               replica=args.replica_name, lease_seconds=args.lease_seconds)
