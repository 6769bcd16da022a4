"""Liveness/readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import BreakerHealth, GraphHealth, Health
from app.llm.resilient import ResilientLLM

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    graph, worker = services.library.graph, services.triples
    entities, nodes, edges = graph.sizes()  # never waits for an ingest holding the graph
    return Health(
        status="ok",
        documents=services.library.store.count_documents(),
        chunks=services.library.index.ntotal,
        index_kind=services.library.index.kind,
        llm=services.settings.llm,
        llm_backends=list(services.pipeline.llms),
        llm_breakers={
            name: BreakerHealth(**vars(llm.breaker.snapshot()))
            for name, llm in services.pipeline.llms.items()
            if isinstance(llm, ResilientLLM)
        },
        graph=GraphHealth(
            entities=entities,
            nodes=nodes,
            edges=edges,
            triples=services.settings.graph_triples,
            triples_pending=worker.pending if worker else 0,
            triples_stats=dict(worker.stats) if worker else {},
        ),
    )
