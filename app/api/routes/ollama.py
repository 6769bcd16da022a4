"""Ollama-compatible API, so Open WebUI and other Ollama front ends can connect to Sieve as to
an Ollama server: ``POST /api/chat`` and ``POST /api/generate`` (NDJSON streaming by default,
as Ollama does), ``GET /api/tags``, ``POST /api/show``, ``GET /api/ps``, ``GET /api/version``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from hashlib import sha256
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.api.access import PrincipalDep, readable
from app.api.chat import MODEL_ID, ChatRun, answer_pieces, chat_text, prepare, sieve_extra
from app.api.chat_schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaShowRequest,
    any_content_type,
    json_body_doc,
)
from app.api.deps import ServicesDep
from app.api.streaming import failure_reason, ndjson, ndjson_stream
from app.conversation import Turn
from app.pipeline import Answer, AskEvent
from app.services import Services

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["ollama-compatible"])
VERSION = "0.1.0"  # Sieve's own version: it is not an Ollama release
_DETAILS = {
    "parent_model": "",
    "format": "sieve",
    "family": "sieve",
    "families": ["sieve"],
    "parameter_size": "",
    "quantization_level": "",
}


_NDJSON: dict[str, Any] = {
    "description": "One JSON object, or with stream=true one JSON object per line.",
    "content": {"application/json": {}, "application/x-ndjson": {}},
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@router.get("/version")
def version() -> dict[str, str]:
    return {"version": VERSION}


@router.get("/tags")
def tags(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """``sieve:latest`` (the caller's default collection) and ``sieve:<collection>`` for each
    collection the caller may read."""
    names = [f"{MODEL_ID}:latest"] + [
        f"{MODEL_ID}:{name}"
        for name in services.collections.names()
        if principal.can(name, write=False)
    ]
    return {
        "models": [
            {
                "name": name,
                "model": name,
                "modified_at": _now(),
                "size": 0,
                "digest": sha256(name.encode()).hexdigest(),
                "details": _DETAILS,
            }
            for name in names
        ]
    }


@router.get("/ps")
def running() -> dict[str, Any]:
    return {"models": []}


@router.post("/show", openapi_extra=json_body_doc(OllamaShowRequest))
def show(
    body: Annotated[OllamaShowRequest, Depends(any_content_type(OllamaShowRequest))],
) -> dict[str, Any]:
    return {
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": _DETAILS,
        "model_info": {},
        "capabilities": ["completion"],
    }


@router.post(
    "/chat",
    responses={200: _NDJSON, 422: {}, 502: {}},
    openapi_extra=json_body_doc(OllamaChatRequest),
)
async def chat(
    body: Annotated[OllamaChatRequest, Depends(any_content_type(OllamaChatRequest))],
    services: ServicesDep,
    principal: PrincipalDep,
) -> Any:
    collection = readable(services, principal, body.collection_asked())
    run = await prepare(
        services.sieve, [m.turn() for m in body.messages], body.overrides(), collection
    )
    return await _respond(services, run, body.model, body.stream, chat=True)


@router.post(
    "/generate",
    responses={200: _NDJSON, 422: {}, 502: {}},
    openapi_extra=json_body_doc(OllamaGenerateRequest),
)
async def generate(
    body: Annotated[OllamaGenerateRequest, Depends(any_content_type(OllamaGenerateRequest))],
    services: ServicesDep,
    principal: PrincipalDep,
) -> Any:
    collection = readable(services, principal, body.collection_asked())
    if not body.prompt.strip():  # Ollama clients send an empty prompt to load a model
        return {
            "model": body.model,
            "created_at": _now(),
            "response": "",
            "done": True,
            "done_reason": "load",
        }
    run = await prepare(services.sieve, [Turn("user", body.prompt)], body.overrides(), collection)
    return await _respond(services, run, body.model, body.stream, chat=False)


def _message(text: str, chat: bool) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text}} if chat else {"response": text}


async def _respond(services: Services, run: ChatRun, model: str, stream: bool, chat: bool) -> Any:
    started = time.perf_counter_ns()
    if stream:
        events = await services.sieve.ask_stream(run.rewrite.question, run.options, admitted=True)
        return ndjson_stream(_lines(services, run, events, model, chat, started))
    answer = await services.sieve.ask(run.rewrite.question, run.options)
    text = chat_text(answer, services.settings.chat_sources)
    return {
        "model": model,
        "created_at": _now(),
        **_message(text, chat),
        **_final(answer, run, started),
    }


async def _lines(
    services: Services,
    run: ChatRun,
    events: AsyncIterator[AskEvent],
    model: str,
    chat: bool,
    started: int,
) -> AsyncIterator[str]:
    try:
        async for piece in answer_pieces(events, services.settings.chat_sources):
            head = {"model": model, "created_at": _now()}
            if isinstance(piece, Answer):
                yield ndjson({**head, **_message("", chat), **_final(piece, run, started)})
            else:
                yield ndjson({**head, **_message(piece, chat), "done": False})
    except Exception as exc:  # the 200 is already sent: report in-band, as Ollama does
        yield ndjson({"error": failure_reason(exc, "/api")})


def _final(answer: Answer, run: ChatRun, started: int) -> dict[str, Any]:
    llm_ns = int(answer.timings_ms.get("llm", 0.0) * 1e6)
    return {
        "done": True,
        "done_reason": "stop",
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": 0,
        "prompt_eval_count": answer.tokens_after,
        "prompt_eval_duration": int(answer.timings_ms.get("total", 0.0) * 1e6) - llm_ns,
        "eval_count": len(answer.answer.split()),
        "eval_duration": llm_ns,
        "sieve": sieve_extra(answer, run.rewrite),
    }
