"""Pure ASGI middleware: with auth on, a request that carries a body is authenticated before a
byte of that body is read.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so without
this a caller with no key (or a wrong one) could make the server read and ``json.loads`` a 2 MB
body on the event loop for every 401 it gets. Requests without a body (GET, HEAD, OPTIONS) go
on to the routes, where ``get_principal`` checks them as before; the principal found here is
handed to it, so the rate limit counts each request once.
"""

from __future__ import annotations

import json

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.access import PRINCIPAL_STATE, Gatekeeper, RateLimitedError, UnauthorizedError
from app.api.errors import error_body

_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuthFirstMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate: Gatekeeper | None = getattr(scope["app"].state, "gatekeeper", None)
        if (
            scope["type"] != "http"
            or scope["method"] in _BODILESS
            or gate is None
            or not (gate.enabled)
        ):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1") or None
        try:
            principal = await to_thread.run_sync(gate.principal, header)
        except (UnauthorizedError, RateLimitedError) as exc:
            await _refuse(scope, send, exc)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, exc: UnauthorizedError | RateLimitedError) -> None:
    status = 401 if isinstance(exc, UnauthorizedError) else 429
    body = json.dumps(error_body(scope["path"], status, str(exc))).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the unread body is not worth draining
    ]
    if isinstance(exc, UnauthorizedError):
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    else:
        headers.append((b"retry-after", str(exc.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
