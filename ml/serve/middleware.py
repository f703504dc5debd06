"""ASGI middleware: request metrics (outermost, so every answer is counted) and the request body size limit.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: no extra task and body copy per request, which
matters at thousands of requests per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml.serve.metrics import ServeMetrics
from ml.serve.schemas import ErrorResponse, FieldError


def error_body(status: int, error: str, message: str, fields: list[FieldError] | None = None) -> bytes:
    payload = ErrorResponse(status=status, error=error, message=message, fields=fields or [])
    return payload.model_dump_json().encode()


async def send_error(send: Send, status: int, error: str, message: str, field: str | None = None) -> None:
    fields = [FieldError(field=field, message=message)] if field else None
    body = error_body(status, error, message, fields)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # The client may still be sending a body we refuse to read: tell it not to reuse the connection.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status.

    ``routes`` (read at request time) names requests answered before routing, e.g. a 413 for /v1/act.
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            for candidate in self.routes():
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.observe_request(self._template(scope), scope["method"], status, time.perf_counter() - started)


class BodyLimitMiddleware:
    """Answers 413 for bodies over ``max_bytes`` before the app parses anything.

    A declared Content-Length is checked up front; a chunked body is read up to the limit and then
    replayed to the app, so no path lets an oversized body reach the JSON parser.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"request body exceeds the {self.max_bytes}-byte limit; send fewer observations per request"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(send, 400, "bad_request", "Content-Length is not an integer", "Content-Length")
                return
            if length > self.max_bytes:
                await send_error(send, 413, "payload_too_large", self._too_large(), "body")
                return
            await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away mid-body; nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, "payload_too_large", self._too_large(), "body")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
