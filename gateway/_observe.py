"""The outermost middleware: every request gets an id (its log lines carry it, and the `x-request-id`
response header, as OpenAI's API answers), is counted and timed in the metrics by its route template,
and is logged once when its response ends (for a stream: when the stream ends)."""

from __future__ import annotations

import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._logs import bind
from ._metrics import Metrics

__all__ = ["Observe"]

log = logging.getLogger("kernelgate.access")


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{secrets.token_hex(16)}"
        bind(request_id=request_id)
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            took = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"  # bounded: never the raw path
            method = scope["method"]
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_seconds.labels(method, template).observe(took)
            log.info("%s %s %d %.1f ms", method, scope["path"], status, took * 1000)
