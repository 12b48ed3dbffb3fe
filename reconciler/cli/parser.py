"""The command line's shape: every command, flag and default, and the exit codes in --help."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from reconciler import __version__
from reconciler.cli.common import EXIT_ERROR, seconds
from reconciler.daemon.listen import DEFAULT_LISTEN


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which is "changes pending" under --detailed-exitcode."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=None,
                        help="state directory (default: $RECONCILER_STATE_DIR, $STATE_DIRECTORY, "
                             "or $XDG_STATE_HOME/reconciler)")
    common.add_argument("--state-url", default=None, metavar="URL",
                        help="keep the state in PostgreSQL (postgresql://USER@HOST/DB; replicas share it) "
                             "instead of the state directory (default: $RECONCILER_STATE_URL); a password "
                             "only by reference: ?password_file=PATH, ?password_credential=NAME, PGPASSFILE")
    common.add_argument("--state-key-file", type=Path, default=None, metavar="PATH",
                        help="the fingerprint key shared by replicas, with --state-url "
                             "(default: $RECONCILER_STATE_KEY_FILE); never stored in the database")
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
            c.add_argument("--json", action="store_true", help="print the plan as one JSON object (= --format json)")
            c.add_argument("--format", choices=("text", "json", "markdown"), default=None,
                           help="text (default), json, or markdown for pull-request comments")
            c.add_argument("--detailed-exitcode", action="store_true",
                           help="exit 2 when changes are pending (0 none, 1 error)")
            c.add_argument("--out", type=Path, default=None, metavar="FILE",
                           help="also save the plan (no values; authenticated with the state's key) "
                                "for `apply --plan FILE`")
        else:
            c.add_argument("--plan", type=Path, default=None, dest="plan_file", metavar="FILE",
                           help="apply exactly this saved plan; refused whole (exit 1) if it is stale")

    s = sub.add_parser("status", parents=[common], help="last result per sync; with DIR every sync of the specs")
    s.add_argument("dir", nargs="?", default=None,
                   help="spec directory: list every sync of it (also never-run and invalid ones) with its state")
    s.add_argument("--sync", action="append", default=[], metavar="NAME", help="only this sync (with DIR)")
    s.add_argument("--json", action="store_true")

    i = sub.add_parser("import", parents=[common], help="import destination secrets into the source, then sync")
    i.add_argument("name", help="the SecretSync to import for")
    i.add_argument("dir", nargs="?", default=None, help=dir_help)
    i.add_argument("--priority", choices=("source", "destination"), default=None,
                   help="who wins a conflicting key (default: the sync's initialSyncBehavior, else source)")

    r = sub.add_parser("remove", parents=[common], help="delete this sync's secrets from the destination")
    r.add_argument("name", help="the SecretSync whose destination secrets to delete")
    r.add_argument("dir", nargs="?", default=None, help=dir_help)
    r.add_argument("--yes", "-y", action="store_true", help="do not ask; needed when there is no terminal")
    r.add_argument("--dry-run", action="store_true", help="only show what would be deleted")

    d = sub.add_parser("run", parents=[common], help="the daemon: reconcile on start, on change, on a schedule",
                       epilog="Exits 0 after SIGTERM/SIGINT (graceful stop); SIGHUP reloads every spec.")
    d.add_argument("dir", nargs="?", default=None, help=dir_help)
    d.add_argument("--listen", default=os.environ.get("RECONCILER_LISTEN", DEFAULT_LISTEN), metavar="HOST:PORT",
                   help=f"health, metrics and webhook server (default: $RECONCILER_LISTEN or {DEFAULT_LISTEN}; "
                        "'off' disables it)")
    d.add_argument("--workers", type=int, default=4, help="syncs reconciled at once (default 4)")
    d.add_argument("--per-connection", type=int, default=2,
                   help="syncs reconciled at once per destination connection (default 2)")
    d.add_argument("--replica-name", default=os.environ.get("RECONCILER_REPLICA_NAME"), metavar="NAME",
                   help="this replica's name with --state-url (default: $RECONCILER_REPLICA_NAME or "
                        "reconciler@HOST:PID)")
    d.add_argument("--lease-seconds", type=seconds, default=os.environ.get("RECONCILER_LEASE_SECONDS", "30"),
                   metavar="SECONDS", help="with --state-url: a replica silent this long has its syncs taken "
                                           "over by the others (default: $RECONCILER_LEASE_SECONDS or 30)")
    d.add_argument("--shutdown-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, wait this long for reconciles in progress (default 30)")
    from reconciler.cli.trigger import add_parser as add_trigger

    add_trigger(sub, common)
    return p
