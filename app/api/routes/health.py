"""Liveness/readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    return Health(
        status="ok",
        documents=services.library.store.count_documents(),
        chunks=services.library.index.ntotal,
        index_kind=services.library.index.kind,
        llm=services.settings.llm,
    )
