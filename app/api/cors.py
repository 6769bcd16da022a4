"""CORS for the few paths a page on another origin needs, not for the whole API.

The embeddable widget only asks questions (``POST /ask``); allowing other origins on the
document endpoints would let any page a user visits list, upload or delete documents through
that user's browser.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CROSS_ORIGIN_PATHS = ("/ask",)


class PathCORSMiddleware:
    def __init__(
        self, app: ASGIApp, origins: Sequence[str], paths: Sequence[str] = CROSS_ORIGIN_PATHS
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
