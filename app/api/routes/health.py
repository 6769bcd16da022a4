"""Liveness/readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import GraphHealth, Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    graph, worker = services.library.graph, services.triples
    with graph.lock:
        return Health(
            status="ok",
            documents=services.library.store.count_documents(),
            chunks=services.library.index.ntotal,
            index_kind=services.library.index.kind,
            llm=services.settings.llm,
            llm_backends=list(services.pipeline.llms),
            graph=GraphHealth(
                entities=graph.entity_count,
                nodes=graph.g.number_of_nodes(),
                edges=graph.g.number_of_edges(),
                triples=services.settings.graph_triples,
                triples_pending=worker.pending if worker else 0,
                triples_stats=dict(worker.stats) if worker else {},
            ),
        )
