"""Liveness/readiness: answered on the event loop, never behind questions or uploads.

The public answer needs no I/O and no thread; only the admin's detailed one reads counts from
SQLite on a worker thread."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request

from app.api.access import get_gatekeeper
from app.api.deps import ServicesDep
from app.api.schemas import BreakerHealth, GraphHealth, Health, ModelsHealth
from app.auth import bearer_token, check_admin
from app.llm.resilient import ResilientLLM
from app.services import Services
from pruner import BlendedPruner, ContextPruner

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(services: ServicesDep, request: Request) -> Health:
    gate = get_gatekeeper(request)
    token = bearer_token(request.headers.get("authorization")) or ""
    public = Health(
        status="ok",
        auth=gate.enabled,
        llm=services.settings.llm,
        llm_backends=list(services.pipeline.llms),
    )
    if gate.enabled and not check_admin(token, gate.admin_key):
        return public
    return await to_thread.run_sync(_details, services, gate.enabled)


def _details(services: Services, auth: bool) -> Health:
    worker = services.triples
    # every open collection's graph; sizes() never waits for an ingest holding a graph
    sizes = [coll.graph.sizes() for coll in services.collections.opened()]
    entities, nodes, edges = (sum(s[i] for s in sizes) for i in range(3))
    store = services.collections.store
    return Health(
        status="ok",
        auth=auth,
        collections=len(services.collections.names()),
        documents=store.count_documents(),
        chunks=store.count_chunks(),
        index_kind=services.settings.index_kind,  # (no collection is opened to tell)
        llm=services.settings.llm,
        llm_backends=list(services.pipeline.llms),
        llm_breakers={
            name: BreakerHealth(**vars(llm.breaker.snapshot()))
            for name, llm in services.pipeline.llms.items()
            if isinstance(llm, ResilientLLM)
        },
        models=_models(services),
        graph=GraphHealth(
            entities=entities,
            nodes=nodes,
            edges=edges,
            triples=services.settings.graph_triples,
            triples_pending=worker.pending if worker else 0,
            triples_stats=dict(worker.stats) if worker else {},
        ),
    )


def _models(services: Services) -> ModelsHealth:
    pruner, chosen = services.pruner, services.precision
    blend = pruner.blend.threshold if isinstance(pruner, BlendedPruner) else None
    if isinstance(pruner, BlendedPruner):
        pruner = pruner.inner
    batches: dict[str, int] = {}
    if isinstance(pruner, ContextPruner):
        stats = pruner.batcher.stats
        batches = {
            "calls": stats.calls,
            "requests": stats.jobs,
            "largest": stats.largest,
            "cache_hits": pruner.cache_hits,
        }
    return ModelsHealth(
        device=chosen.device,
        precision=chosen.precision,
        reason=chosen.reason,
        embedder_precision=services.embedder.precision,
        pruner_precision=pruner.precision if isinstance(pruner, ContextPruner) else None,
        pruner_batches=batches,
        sentence_blend_threshold=blend,
    )
