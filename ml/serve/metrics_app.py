"""The ASGI app of the optional metrics port: ``GET /metrics`` and nothing else.

With ``RLOPS_SERVE_METRICS_PORT`` set, the API's port stops answering /metrics and this app answers it on a
port of its own, which a NetworkPolicy can open to Prometheus alone while the API port faces clients.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from ml.serve.metrics import ServeMetrics
from ml.serve.middleware import send_error


class MetricsApp:
    def __init__(self, metrics: ServeMetrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: nothing to start or stop
            return
        if scope["path"] != "/metrics":
            await send_error(send, 404, "not_found", f"no route {scope['path']}; this port serves /metrics only")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(send, 405, "method_not_allowed", f"{scope['method']} is not allowed on /metrics")
            return
        body, content_type = self.metrics.render()
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
