"""Pure ASGI middleware capping the size of every request body while it streams in, and the
wait for each piece of it (a client trickling a body gets 408 after ``body_timeout_s``).

A declared ``Content-Length`` over the limit is refused before the app reads a byte; a chunked
(or lying) body is counted as it arrives and refused with 413 as soon as it passes the limit, so
no route ever buffers more than the limit. Uploads (``POST /documents``) get ``max_request_mb``,
every other route the much smaller ``max_json_mb``: their bodies are JSON questions and chats.
The limits are read from ``Settings`` on each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_body
from app.observability.middleware import route_path
from app.settings import Settings

UPLOAD_PATH = "/documents"
_MB = 1024 * 1024


class BodyTooLargeError(Exception):
    """Raised into the app by ``receive`` once the body passed the limit."""


class BodyTimeoutError(Exception):
    """Raised into the app by ``receive`` when the next piece of the body is too slow."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit(self, method: str, path: str) -> tuple[int, str]:
        """The byte limit of a request and the setting it comes from."""
        if method == "POST" and path.rstrip("/") == UPLOAD_PATH:
            return int(self.settings.max_request_mb * _MB), "max_request_mb"
        return int(self.settings.max_json_mb * _MB), "max_json_mb"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        limit, setting = self.limit(scope["method"], path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            reason = f"request body is {declared} bytes, over the {limit}-byte limit ({setting})"
            await _refuse(send, path, reason)
            return

        received = 0
        exceeded = False
        slow = False
        body_done = False
        started = False
        timeout = self.settings.body_timeout_s
        min_rate = self.settings.min_body_kbps * 1024  # bytes/s, once `timeout` has passed
        began = time.monotonic()

        async def counting_receive() -> Message:
            nonlocal received, exceeded, slow, body_done
            if exceeded or slow:
                raise BodyTooLargeError if exceeded else BodyTimeoutError
            if body_done:  # e.g. a streaming route waiting for http.disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                slow = True
                raise BodyTimeoutError from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLargeError
                elapsed = time.monotonic() - began
                if not body_done and elapsed > timeout and received < min_rate * elapsed:
                    slow = True  # a trickle (slowloris): each piece in time, the whole never
                    raise BodyTimeoutError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded or slow:
                return  # whatever the app made of the error, the client gets our 413/408
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(BodyTooLargeError, BodyTimeoutError):  # uncaught by the app
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            reason = f"request body is over the {limit}-byte limit ({setting})"
            await _refuse(send, path, reason)
        elif slow and not started:
            reason = (
                f"request body too slow: a pause over {timeout:g} s (body_timeout_s) or under "
                f"{self.settings.min_body_kbps:g} KB/s on average (min_body_kbps)"
            )
            await _refuse(send, path, reason, 408)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, path: str, reason: str, status: int = 413) -> None:
    body = json.dumps(error_body(path, status, reason)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
