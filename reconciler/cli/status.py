"""``status DIR``: every sync of the specs with its state at a glance (the joining of specs,
state and the daemon's ``daemon.json`` lives in :mod:`reconciler.engine.overview`)."""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.cli.common import EXIT_ERROR, EXIT_OK, load_specs, state_location


def status_of_specs(args: argparse.Namespace) -> int:
    from reconciler.daemon.statusfile import read_live
    from reconciler.engine import overview

    specs = load_specs(args)
    unknown = [n for n in args.sync if n not in specs.syncs and n not in specs.invalid_syncs]
    for n in unknown:
        print(f"error: no sync named {n!r} in {specs.root}", file=sys.stderr)
    known = [n for n in args.sync if n not in unknown]
    if args.sync and not known:  # no name left must not mean "every sync"
        return EXIT_ERROR
    location = state_location(args)
    state = location.open(readonly=True)
    try:
        rows = overview.rows(specs, state, read_live(location.directory), known)
    finally:
        state.close()
    if args.sync and not rows:
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"format_version": "1", "syncs": rows}, indent=2))
    else:
        sys.stdout.write(overview.render_text(rows))
    return EXIT_ERROR if unknown else EXIT_OK


