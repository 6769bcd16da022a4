"""How ``sieve serve`` runs uvicorn: bounded connections and timeouts for slow clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and answers 503 past
``limit_concurrency``, but it waits forever for a request's headers: a client sending one byte
every few seconds ("slowloris") holds a connection as long as it likes. :func:`timed_protocol`
adds that deadline to uvicorn's httptools protocol: the request line and headers must arrive
within ``header_timeout_s`` of the connection opening (or of the previous response), else the
connection is closed. Slow *bodies* are cut by ``BodySizeLimitMiddleware`` (408 after
``body_timeout_s`` without a piece), which sees every request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings


class _TimedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._arm()  # a pipelined or keep-alive request: its headers get the same deadline
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # a pipelined request is slow while the one before it is still being answered:
            # let that response finish, then close instead of keeping the connection alive
            cycle.keep_alive = False
            return
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete headers in time")
            self.transport.close()


def timed_protocol(header_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline on request headers."""
    if header_timeout_s <= 0:
        raise ValueError(f"header_timeout_s must be > 0, got {header_timeout_s}")
    return type(
        "SieveHttpProtocol", (_TimedHttpToolsProtocol,), {"header_timeout_s": header_timeout_s}
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` beyond the app and address."""
    return {
        "http": timed_protocol(settings.header_timeout_s),
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
    }
