"""The daemon's HTTP endpoints: ``/healthz`` (the loop answers and its parts live),
``/readyz`` (specs loaded, first reconcile done, every part running), ``/metrics``
(Prometheus), ``/status`` (JSON: next runs and retries) and ``POST /webhooks/<route>/<connection>``
(a source's change announcements; which route belongs to which source is the catalog's
business, e.g. ``/webhooks/kms/<connection>``), ``POST /syncs/<name>/trigger`` (run a sync now:
202 and the run's id) and ``GET /runs/<id>?wait=SECONDS`` (that run, once finished or after the
wait: ``reconciler trigger`` long-polls it).

The API sees the daemon only through :class:`Service`, so neither imports the other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from reconciler.daemon import control
from reconciler.daemon.metrics import CONTENT_TYPE
from reconciler.daemon.runs import Runs
from reconciler.daemon.server import HttpServer, Request, Response, json_response

WEBHOOK_PREFIX = "/webhooks/"
SYNCS_PREFIX, RUNS_PREFIX = "/syncs/", "/runs/"


class Service(Protocol):
    def healthy(self) -> tuple[bool, list[str]]: ...

    def not_ready(self) -> str | None:
        """Why the daemon is not ready (None: it is)."""
        ...

    def metrics_text(self) -> bytes: ...

    def status(self) -> dict[str, Any]: ...

    def webhook(self, route: str, connection: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, list[str]]:
        """Handle a webhook: an HTTP status and the syncs it triggered."""
        ...

    @property
    def runs(self) -> Runs: ...

    def request_run(self, name: str) -> tuple[int, dict[str, Any]]:
        """Trigger a sync by name: an HTTP status and the JSON answer (the run's id)."""
        ...


class Api:
    def __init__(self, service: Service, state_dir: Path) -> None:
        self.service = service
        self._token = control.create(state_dir)

    async def start(self, host: str, port: int) -> HttpServer:
        server = HttpServer(host, port, self.handle)
        await server.start()
        return server

    async def handle(self, req: Request) -> Response:
        if req.path.startswith(WEBHOOK_PREFIX):
            route, _, connection = req.path[len(WEBHOOK_PREFIX):].partition("/")
            if not route or not connection or "/" in connection:
                return Response(404, b"Not Found\n")
            if req.method != "POST":
                return Response(405, b"Method Not Allowed\n", headers={"Allow": "POST"})
            status, triggered = self.service.webhook(route, connection, req.body, req.headers)
            if status == 202:
                return json_response(202, {"triggered": triggered})
            return Response(status, _REASONS.get(status, b"Error\n"))
        if req.path.startswith((SYNCS_PREFIX, RUNS_PREFIX)):
            return await self._runs(req)
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"Method Not Allowed\n", headers={"Allow": "GET"})
        s = self.service
        if req.path == "/healthz":
            ok, problems = s.healthy()
            return Response(200, b"ok\n") if ok else Response(503, ("; ".join(problems) + "\n").encode())
        if req.path == "/readyz":
            why = s.not_ready()
            return Response(200, b"ready\n") if why is None else Response(503, f"not ready: {why}\n".encode())
        if req.path == "/metrics":
            return Response(200, s.metrics_text(), CONTENT_TYPE)
        if req.path == "/status":
            return json_response(200, s.status())
        return Response(404, b"Not Found\n")

    async def _runs(self, req: Request) -> Response:
        """Runs on request, for a person on this host: refused to any peer but loopback, even
        when ``--listen`` faces a network (for webhooks or metrics), and to any request without
        the control token (:mod:`reconciler.daemon.control`: loopback can be a proxy's)."""
        if not _loopback(req.peer):
            return json_response(403, {"error": "only clients on this host (loopback) may trigger runs"})
        if not control.authorized(req.headers, self._token):
            return json_response(401, {"error": f"a run needs the daemon's control token ({control.FILE_NAME} in its "
                                                "state directory, sent as 'Authorization: Bearer TOKEN'); "
                                                "`reconciler trigger --state-dir DIR` sends it"})
        parts = req.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "syncs" and parts[2] == "trigger" and parts[1]:
            if req.method != "POST":
                return Response(405, b"Method Not Allowed\n", headers={"Allow": "POST"})
            return json_response(*self.service.request_run(parts[1]))
        if len(parts) == 2 and parts[0] == "runs" and parts[1]:
            if req.method not in ("GET", "HEAD"):
                return Response(405, b"Method Not Allowed\n", headers={"Allow": "GET"})
            try:
                wait = float(parse_qs(req.query).get("wait", ["0"])[0])
            except ValueError:
                return json_response(400, {"error": "wait must be a number of seconds"})
            run = await self.service.runs.wait(parts[1], wait)
            if run is None:
                return json_response(404, {"run": parts[1], "error": "no such run (the daemon keeps the newest "
                                                                  "runs; a restarted daemon knows none)"})
            return json_response(200, run)
        return Response(404, b"Not Found\n")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


_REASONS = {400: b"Bad Request\n", 401: b"Unauthorized\n", 404: b"Not Found\n", 503: b"Service Unavailable\n"}
