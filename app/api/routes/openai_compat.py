"""OpenAI-compatible chat: ``POST /v1/chat/completions`` (JSON or SSE chunks ending with
``[DONE]``) and ``GET /v1/models``. Any model name is accepted; the answer is Sieve's
pipeline answer, its citations as [n] in the text plus an extra ``sieve`` field."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter

from app.api.access import PrincipalDep, readable
from app.api.chat import MODEL_ID, ChatRun, answer_pieces, chat_text, prepare, sieve_extra
from app.api.chat_schemas import ChatCompletionRequest
from app.api.deps import ServicesDep, SieveDep
from app.api.streaming import event_stream, failure_reason, sse
from app.llm import LLMError
from app.pipeline import Answer, AskEvent
from app.services import Services

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai-compatible"])


def _model_card(model_id: str = MODEL_ID) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "sieve"}


@router.get("/models")
def list_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """``sieve`` (the caller's default collection) and ``sieve:<collection>`` for each
    collection the caller may read (a chat client picks a collection by model name)."""
    names = [
        f"{MODEL_ID}:{name}"
        for name in services.collections.names()
        if principal.can(name, write=False)
    ]
    return {"object": "list", "data": [_model_card(), *(_model_card(n) for n in names)]}


@router.get("/models/{model_id:path}")
def get_model(model_id: str, principal: PrincipalDep) -> dict[str, Any]:
    return _model_card(model_id)  # every name maps to the pipeline


_SSE: dict[str, Any] = {
    "description": "A chat.completion object, or with stream=true `text/event-stream` chunks.",
    "content": {"application/json": {}, "text/event-stream": {}},
}


@router.post("/chat/completions", responses={200: _SSE, 422: {}, 502: {}})
async def chat_completions(
    body: ChatCompletionRequest, services: ServicesDep, sieve: SieveDep, principal: PrincipalDep
) -> Any:
    collection = readable(services, principal, body.collection_asked())
    run = await prepare(sieve, [m.turn() for m in body.messages], body.overrides(), collection)
    meta = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": body.model,
    }
    if body.stream:
        events = await sieve.ask_stream(run.rewrite.question, run.options, admitted=True)
        return event_stream(_chunks(services, run, meta, events))
    answer = await sieve.ask(run.rewrite.question, run.options)
    text = chat_text(answer, services.settings.chat_sources)
    return {
        **meta,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(services, answer, text),
        "sieve": sieve_extra(answer, run.rewrite),
    }


async def _chunks(
    services: Services, run: ChatRun, meta: dict[str, Any], events: AsyncIterator[AskEvent]
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({**meta, "object": "chat.completion.chunk", "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for piece in answer_pieces(events, services.settings.chat_sources):
            if isinstance(piece, Answer):
                text = chat_text(piece, services.settings.chat_sources)
                yield chunk(
                    {},
                    "stop",
                    usage=_usage(services, piece, text),
                    sieve=sieve_extra(piece, run.rewrite),
                )
            else:
                yield chunk({"content": piece})
    except Exception as exc:  # after the first byte the status is sent: report in-band
        reason = failure_reason(exc, "/v1/chat/completions")
        code = 502 if isinstance(exc, LLMError) else 500
        yield sse({"error": {"message": reason, "type": "api_error", "code": code}})
    yield sse("[DONE]")


def _usage(services: Services, answer: Answer, text: str) -> dict[str, int]:
    """Token counts in the embedder's word pieces: the context sent and the answer."""
    completion = services.embedder.count_tokens([text])[0]
    return {
        "prompt_tokens": answer.tokens_after,
        "completion_tokens": completion,
        "total_tokens": answer.tokens_after + completion,
    }
