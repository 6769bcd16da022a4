"""Pure ASGI middleware: request id, one access log line and HTTP metrics per request.

Pure ASGI rather than ``BaseHTTPMiddleware`` so streaming responses pass through unbuffered:
the app returns only after the last body chunk is sent, so the measured latency covers the
whole stream.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logs import REQUEST_ID
from app.observability.metrics import OTHER, Metrics

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UPLOADS = "/documents"

access_log = logging.getLogger("sieve.access")


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a fresh uuid4 hex."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (``/documents/{document_id}``), set
    in the scope by the router; ``other`` when no route matched, so raw paths never become
    labels."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else OTHER


def route_path(scope: Scope) -> str:
    """The path without the ``root_path`` a proxy mounts the app under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _printable(text: str, limit: int = 2048) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``…), cut to ``limit``."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("…" if len(text) > limit else "")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        status = 500  # what the client gets if the app raises before responding
        upload = scope["method"] == "POST" and route_path(scope).rstrip("/") == _UPLOADS

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER, rid)
            await send(message)

        if upload:
            self.metrics.uploads_in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if upload:
                self.metrics.uploads_in_flight.dec()
            route = route_template(scope)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            path = _printable(scope["path"])  # decoded by the server: %0A must not start a line
            access_log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                path,
                status,
                seconds * 1000,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
            REQUEST_ID.reset(token)
