"""The command line's shape: every command, flag and default, and the exit codes in --help."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from reconciler import __version__

#: the pinned exit codes (--help's epilog says them)
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_INTERRUPTED = 130


def seconds(text: str) -> float:
    """argparse type for a duration in seconds: float() also takes 'nan' and 'inf', which
    passed every range check and failed later (trigger: after the run was triggered)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which is "changes pending" under --detailed-exitcode."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


#: every command and its one-line help, in the order --help lists them
COMMAND_HELP: dict[str, str] = {
    "validate": "check specs (schema + rules)",
    "plan": "show what apply would change",
    "apply": "apply the plan once",
    "status": "last result per sync; with DIR every sync of the specs",
    "import": "import destination secrets into the source, then sync",
    "remove": "delete this sync's secrets from the destination",
    "run": "the daemon: reconcile on start, on change, on a schedule",
    "trigger": "ask the running daemon to reconcile a sync now",
}
_DIR_HELP = "spec directory (default: $RECONCILER_SPECS or .)"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser, or — given the command line — only what it needs: a command's flags
    are built when that command runs (the others are listed by name and help), which is most
    of argparse's cost at start-up."""
    chosen = argv[0] if argv and argv[0] in COMMAND_HELP else None
    p = _Parser(
        prog="reconciler",
        description="Keep secret stores converged on specs.",
        epilog="Exit codes: 0 ok, 1 error (invalid specs, a failed sync), 2 changes pending "
        "(plan --detailed-exitcode only).",
    )
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if argv is not None and chosen is None:  # --help, --version or a usage error: names suffice
        for name, help_ in COMMAND_HELP.items():
            sub.add_parser(name, help=help_)
        return p
    common = _common()
    for name in COMMAND_HELP if chosen is None else (chosen,):
        _BUILDERS[name](sub, name, common)
    return p


def _common() -> argparse.ArgumentParser:
    from pathlib import Path  # not for --help: a clean interpreter has not imported it

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
    return common


def _validate(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    v = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name])
    v.add_argument("dir", nargs="?", default=None, help=_DIR_HELP)


def _plan_or_apply(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    from pathlib import Path

    c = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name])
    c.add_argument("dir", nargs="?", default=None, help=_DIR_HELP)
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


def _status(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name])
    s.add_argument("dir", nargs="?", default=None,
                   help="spec directory: list every sync of it (also never-run and invalid ones) with its state")
    s.add_argument("--sync", action="append", default=[], metavar="NAME", help="only this sync (with DIR)")
    s.add_argument("--json", action="store_true")


def _import(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    i = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name])
    i.add_argument("name", help="the SecretSync to import for")
    i.add_argument("dir", nargs="?", default=None, help=_DIR_HELP)
    i.add_argument("--priority", choices=("source", "destination"), default=None,
                   help="who wins a conflicting key (default: the sync's initialSyncBehavior, else source)")


def _remove(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    r = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name])
    r.add_argument("name", help="the SecretSync whose destination secrets to delete")
    r.add_argument("dir", nargs="?", default=None, help=_DIR_HELP)
    r.add_argument("--yes", "-y", action="store_true", help="do not ask; needed when there is no terminal")
    r.add_argument("--dry-run", action="store_true", help="only show what would be deleted")


def _run(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    from reconciler.daemon.listen import DEFAULT_LISTEN

    d = sub.add_parser(name, parents=[common], help=COMMAND_HELP[name],
                       epilog="Exits 0 after SIGTERM/SIGINT (graceful stop); SIGHUP reloads every spec.")
    d.add_argument("dir", nargs="?", default=None, help=_DIR_HELP)
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
                                           "over by the others, 1 to 3600 (default: $RECONCILER_LEASE_SECONDS or 30)")
    d.add_argument("--shutdown-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, wait this long for reconciles in progress (default 30)")


def _trigger(sub: Any, name: str, common: argparse.ArgumentParser) -> None:
    from reconciler.cli.trigger import add_parser

    add_parser(sub, common, COMMAND_HELP[name])


_BUILDERS: dict[str, Callable[[Any, str, argparse.ArgumentParser], None]] = {
    "validate": _validate, "plan": _plan_or_apply, "apply": _plan_or_apply, "status": _status,
    "import": _import, "remove": _remove, "run": _run, "trigger": _trigger,
}
