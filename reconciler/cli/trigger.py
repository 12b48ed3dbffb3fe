"""``reconciler trigger NAME``: ask the running daemon to reconcile one sync now, wait for
that run and print what ``apply`` would have printed for it.

Talks to the daemon's local API (``POST /syncs/<name>/trigger``, then long-polls ``GET
/runs/<id>``) with the standard library only: the CLI needs no HTTP client of its own for two
loopback calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from typing import Any

from reconciler.cli.common import default_state_dir
from reconciler.cli.parser import seconds
from reconciler.daemon import control
from reconciler.daemon.listen import DEFAULT_LISTEN, parse_listen
from reconciler.errors import ConfigError
from reconciler.oserror import os_reason

#: one long-poll's length; the daemon caps it too
POLL_SECONDS = 30.0
EXIT_OK, EXIT_ERROR = 0, 1


class Unreachable(Exception):
    """Nobody answers at the address (no daemon, or one that just stopped)."""


def add_parser(sub: Any, common: argparse.ArgumentParser, help_: str) -> None:
    t = sub.add_parser("trigger", parents=[common], help=help_,
                       epilog="Exits 0 when the run succeeded; 1 when it failed, the sync is unknown or "
                              "not runnable, no daemon listens, or the run did not finish in time.")
    t.add_argument("name", help="the SecretSync to reconcile")
    t.add_argument("--listen", default=os.environ.get("RECONCILER_LISTEN", DEFAULT_LISTEN), metavar="HOST:PORT",
                   help=f"the daemon's --listen address (default: $RECONCILER_LISTEN or {DEFAULT_LISTEN})")
    t.add_argument("--timeout", type=seconds, default=300.0, metavar="SECONDS",
                   help="how long to wait for the run's result (default 300)")


def base_url(listen: str) -> str:
    """Where to reach a daemon listening on ``listen``: a wildcard address means this host."""
    address = parse_listen(listen)
    if address is None:
        raise ConfigError(f"--listen {listen!r}: the daemon's API is off there; give the address it listens on")
    host, port = address
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 (we connect)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _call(method: str, url: str, timeout: float, token: str) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request  # here, not at the top: it pulls in http.client, ssl and email (70 ms)

    # the URL is always http://HOST:PORT/... built by base_url, never a user's scheme
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,  # noqa: S310
                                 headers=control.header(token))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:  # refused, reset, timed out
        reason = getattr(e, "reason", e)
        raise Unreachable(os_reason(reason) if isinstance(reason, OSError) else str(reason)) from None
    try:
        data = json.loads(body)
    except ValueError:
        data = {"error": body.decode("utf-8", "replace").strip()}
    return status, data if isinstance(data, dict) else {}


def trigger(args: argparse.Namespace) -> int:
    try:
        base = base_url(args.listen)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if args.timeout <= 0:
        print("error: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_ERROR
    name = args.name
    state_dir = args.state_dir or default_state_dir()
    unreadable = None
    try:
        token = control.read(state_dir)
    except OSError as e:  # said only if a daemon answers: "no daemon" comes first
        token, unreadable = "", os_reason(e)
    try:
        status, answer = _call("POST", f"{base}/syncs/{urllib.parse.quote(name, safe='')}/trigger", 10.0, token)
    except Unreachable as e:
        print(f"error: no reconciler daemon answers at {base} ({e}); start `reconciler run`, or give the "
              "address it listens on with --listen or $RECONCILER_LISTEN", file=sys.stderr)
        return EXIT_ERROR
    if status == 404:
        print(f"error: the daemon at {base} has no sync named {name!r}", file=sys.stderr)
        return EXIT_ERROR
    if status == 401 and unreadable is not None:
        print(f"error: cannot read the daemon's control token {state_dir / control.FILE_NAME} ({unreadable}); "
              "give the state directory of the running daemon with --state-dir (under systemd "
              "/var/lib/reconciler, readable by root and the service's user)", file=sys.stderr)
        return EXIT_ERROR
    if status == 401:
        print(f"error: the daemon at {base} refused the control token in {state_dir / control.FILE_NAME}: "
              "is that the state directory of the daemon listening there (--state-dir)?", file=sys.stderr)
        return EXIT_ERROR
    if status != 202 or "run" not in answer:
        why = answer.get("error") or f"HTTP {status}"
        print(f"error: the daemon did not run {name}: {why}", file=sys.stderr)
        return EXIT_ERROR
    run_id = str(answer["run"])
    joined = " (joining a trigger already waiting for it)" if answer.get("joined") else ""
    print(f"triggered {name}: run {run_id}{joined}; waiting for its result", file=sys.stderr)
    return _wait(base, name, run_id, args.timeout, token)


def _wait(base: str, name: str, run_id: str, timeout: float, token: str) -> int:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"error: run {run_id} of {name} did not finish within {timeout:g}s; it goes on in the "
                  "daemon (see `reconciler status`)", file=sys.stderr)
            return EXIT_ERROR
        wait = min(left, POLL_SECONDS)
        try:
            status, run = _call("GET", f"{base}/runs/{run_id}?wait={wait:.1f}", wait + 10.0, token)
        except Unreachable as e:
            print(f"error: the daemon stopped answering while run {run_id} of {name} was pending ({e})",
                  file=sys.stderr)
            return EXIT_ERROR
        if status != 200:
            print(f"error: the daemon lost run {run_id} of {name}: {run.get('error') or f'HTTP {status}'}",
                  file=sys.stderr)
            return EXIT_ERROR
        if run.get("state") == "finished":
            print("\n".join(str(line) for line in run.get("lines") or [f"{name}: {run.get('result')}"]))
            return EXIT_OK if run.get("result") == "success" else EXIT_ERROR
