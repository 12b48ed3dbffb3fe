"""Command line: thin commands, exit codes, choice of output. No reconcile logic lives here.

Exit codes (pinned): validate 0 valid / 1 invalid; plan 0 ok / 1 error / 2 changes pending
(only with --detailed-exitcode, as Terraform); apply 0 all applied / 1 any failure.
Results go to stdout, logs and diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from reconciler.cli.parser import COMMAND_HELP, EXIT_ERROR, build_parser

__all__ = ["entry", "main"]

#: commands that hold nothing when they return (no state, thread, connection or temporary
#: file): the process may end without tearing the interpreter down
HOLD_NOTHING = frozenset({"validate"})


def entry() -> None:
    """The ``reconciler`` executable. A command is a short-lived process: the cyclic garbage
    collector stays off while modules load (imports allocate much and free little; its passes
    were a tenth of `validate`), and a command that holds nothing ends without the
    interpreter's teardown (another tenth), once its output is flushed — as ``--help``,
    ``--version`` and usage errors do. The daemon and every command that writes exit normally."""
    gc.disable()
    argv = sys.argv[1:]
    fast = not argv or argv[0] not in COMMAND_HELP or argv[0] in HOLD_NOTHING
    code = main(argv, collect=not fast)
    if not fast:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe (`| head -0`): the output is lost either way
        code = code or EXIT_ERROR
    os._exit(code)


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs command ``name``, imported when it runs (``--help`` needs none)."""
    if name == "trigger":
        from reconciler.cli.trigger import trigger

        return trigger
    from reconciler.cli import commands

    handler: Callable[[argparse.Namespace], int] = getattr(commands, f"cmd_{name}")
    return handler


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's own flush at exit must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test's StringIO): nothing will flush it
        pass


def main(argv: Sequence[str] | None = None, *, collect: bool = True) -> int:
    """Run one command; its exit code. ``collect``: turn the cyclic garbage collector (back)
    on before the command runs, with what loaded so far frozen out of its passes."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(argv).parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: return the code, as for any command
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    if collect and not gc.isenabled():
        gc.freeze()
        gc.enable()
    quiet_default = "warning" if args.command in ("validate", "plan", "status") else "info"
    if args.command != "validate" or args.log_format or args.log_level:  # validate only prints
        from reconciler.logging import configure as configure_logging

        configure_logging(args.log_format or ("json" if args.command == "run" else "console"),
                          args.log_level or quiet_default)
    try:
        return command(args.command)(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `reconciler status | head`: the reader has what it wanted, as with git or cat
        _silence_stdout()
        return EXIT_ERROR
    except Exception as e:  # last line of defence: a clear message, never a traceback
        from reconciler.state.store import StateError

        if isinstance(e, StateError):
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR
        if isinstance(e, OSError):
            from reconciler.oserror import os_reason

            where = f"{e.filename}: " if e.filename else ""
            print(f"error: {where}{os_reason(e)}", file=sys.stderr)
            return EXIT_ERROR
        from reconciler.cli.common import get_logger

        get_logger().error("internal.error", error_type=type(e).__name__)
        print(f"error: internal error ({type(e).__name__}); re-run with --log-level debug and report it",
              file=sys.stderr)
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        return EXIT_ERROR
