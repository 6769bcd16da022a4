"""Question answering over the stored documents: one JSON answer, or server-sent events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter

from app.api.access import PrincipalDep, readable
from app.api.deps import ServicesDep, SieveDep
from app.api.schemas import AskRequest, AskResponse, ContextEvent
from app.api.streaming import event_stream, failure_reason, sse
from app.pipeline import AskEvent, ContextReady, Finished, Retrieved, Token

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ask"])

_STREAM_DOC = {
    "description": "With `stream: true`: `text/event-stream` with the events `retrieval` "
    "{retrieval, candidates, retrievers, timings_ms, hops}, `context` {abstained, citations, "
    "context, stats}, `token` {text} (many), then `done` (the same body as without streaming) or "
    "`error` {detail}.",
    "content": {"text/event-stream": {}},
}


@router.post("/ask", response_model=AskResponse, responses={200: _STREAM_DOC, 422: {}, 502: {}})
async def ask(
    body: AskRequest, services: ServicesDep, sieve: SieveDep, principal: PrincipalDep
) -> Any:
    collection = readable(services, principal, body.collection)
    options = sieve.options(collection=collection, **body.overrides())
    if body.stream:
        # 4xx, or 503 when too many questions are in progress, before the stream starts
        return event_stream(ask_events(await sieve.ask_stream(body.question, options)))
    answer = await sieve.ask(body.question, options)
    return AskResponse.of(answer)


async def ask_events(events: AsyncIterator[AskEvent]) -> AsyncIterator[str]:
    """The pipeline's stages as SSE; an LLM failure midway ends the stream with ``error``."""
    try:
        async for event in events:
            if isinstance(event, Retrieved):
                yield sse(
                    {
                        "retrieval": event.retrieval,
                        "candidates": event.candidates,
                        "retrievers": event.retrievers,
                        "timings_ms": event.timings_ms,
                        "hops": event.hops,
                    },
                    "retrieval",
                )
            elif isinstance(event, ContextReady):
                yield sse(ContextEvent.of(event.answer).model_dump(), "context")
            elif isinstance(event, Token):
                yield sse({"text": event.text}, "token")
            elif isinstance(event, Finished):
                yield sse(AskResponse.of(event.answer).model_dump(), "done")
    except Exception as exc:  # the 200 is sent: report in-band, never cut the stream silently
        yield sse({"detail": failure_reason(exc, "/ask")}, "error")
