"""Wire formats of streamed responses: server-sent events and newline-delimited JSON.

Every streaming route builds its body as an async iterator of already-encoded strings and hands
it to :func:`event_stream` / :func:`ndjson_stream`, which set the headers that stop proxies
(nginx) and browsers from buffering it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from app.llm import LLMError

logger = logging.getLogger(__name__)

_NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event; ``data`` is JSON-encoded on one line (strings such as
    ``[DONE]`` are sent as they are)."""
    payload = data if isinstance(data, str) else _dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def ndjson(data: Any) -> str:
    return _dumps(data) + "\n"


def event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=_NO_BUFFERING)


def ndjson_stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="application/x-ndjson", headers=_NO_BUFFERING)


def failure_reason(exc: Exception, where: str) -> str:
    """What to tell a client whose stream failed after its 200 was sent (the error then goes
    in-band): the LLM's error as is; anything else is logged with its traceback and reported
    without internals."""
    if isinstance(exc, LLMError):
        logger.error("%s: streamed answer failed: %s", where, exc)
        return str(exc)
    logger.exception("%s: streamed answer failed", where)
    return "internal error while answering; the server log has the details"
