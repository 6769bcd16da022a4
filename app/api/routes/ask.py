"""Question answering over the stored documents."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import AskRequest, AskResponse

router = APIRouter(tags=["ask"])


@router.post("/ask", response_model=AskResponse, responses={422: {}, 502: {}})
async def ask(body: AskRequest, services: ServicesDep) -> AskResponse:
    defaults = services.default_options()
    options = replace(
        defaults,
        top_k=body.top_k or defaults.top_k,
        candidates=body.candidates or defaults.candidates,
        prune_threshold=(
            body.prune_threshold if body.prune_threshold is not None else defaults.prune_threshold
        ),
        max_context_tokens=body.max_context_tokens or defaults.max_context_tokens,
        llm=body.llm or defaults.llm,
        retrieval=body.retrieval or defaults.retrieval,
        explain=body.explain,
    )
    answer = await services.pipeline.ask(body.question, options)
    return AskResponse.of(answer)
