"""The daemon's HTTP endpoints: ``/healthz`` (the loop answers and its parts live),
``/readyz`` (specs loaded, first reconcile done), ``/metrics`` (Prometheus), ``/status``
(JSON: next runs and retries) and ``POST /webhooks/kms/<connection>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.daemon.kms import webhook_secret, webhook_targets
from reconciler.daemon.metrics import CONTENT_TYPE
from reconciler.daemon.server import HttpServer, Request, Response, json_response
from reconciler.engine.connect import ConnectError
from reconciler.logging import get_logger
from reconciler.sources.webhook import WebhookError, verify_and_parse

if TYPE_CHECKING:
    from reconciler.daemon.daemon import Daemon

WEBHOOK_PREFIX = "/webhooks/kms/"


class Api:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.log = get_logger(component="http")

    async def start(self, host: str, port: int) -> HttpServer:
        server = HttpServer(host, port, self.handle)
        await server.start()
        return server

    async def handle(self, req: Request) -> Response:
        if req.path.startswith(WEBHOOK_PREFIX):
            if req.method != "POST":
                return Response(405, b"Method Not Allowed\n", headers={"Allow": "POST"})
            return await self.webhook(req, req.path[len(WEBHOOK_PREFIX):])
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"Method Not Allowed\n", headers={"Allow": "GET"})
        d = self.daemon
        if req.path == "/healthz":
            ok, problems = d.healthy()
            return Response(200, b"ok\n") if ok else Response(503, ("; ".join(problems) + "\n").encode())
        if req.path == "/readyz":
            if d.ready:
                return Response(200, b"ready\n")
            why = "specs not loaded" if d.specs is None else "first reconcile in progress"
            return Response(503, f"not ready: {why}\n".encode())
        if req.path == "/metrics":
            return Response(200, d.metrics.render(), CONTENT_TYPE)
        if req.path == "/status":
            return json_response(200, d.status())
        return Response(404, b"Not Found\n")

    async def webhook(self, req: Request, name: str) -> Response:
        d = self.daemon
        conn = d.specs.connections.get(name) if d.specs else None
        if conn is None or conn.app != "kms":
            return Response(404, b"Not Found\n")
        try:
            secret = webhook_secret(conn)
        except ConnectError as e:
            self.log.error("webhook.secret_unavailable", connection=name, error=str(e))
            return Response(503, b"Service Unavailable\n")
        if secret is None:
            return Response(404, b"Not Found\n")
        try:
            change = verify_and_parse(req.body, req.headers, secret)
        except WebhookError as e:
            self.log.warning("webhook.rejected", connection=name, reason=str(e))
            return Response(401, b"Unauthorized\n")
        assert d.specs is not None
        names = [n for n in webhook_targets(d.specs.syncs, name, change) if d.trigger(n, "webhook")]
        self.log.info("webhook.received", connection=name, environment=change.environment,
                      secret_path=change.secret_path, syncs=names)
        return json_response(202, {"triggered": names})
