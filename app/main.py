"""Assembles the FastAPI app: lifespan (models, index), routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.api.access import Gatekeeper, get_principal
from app.api.auth_first import AuthFirstMiddleware
from app.api.cors import PathCORSMiddleware
from app.api.errors import install_error_handlers
from app.api.limits import BodySizeLimitMiddleware
from app.api.routes import (
    admin,
    ask,
    docs,
    documents,
    graph,
    health,
    jobs,
    ollama,
    openai_compat,
    web,
)
from app.api.routes import metrics as metrics_routes
from app.observability import Metrics, ObservabilityMiddleware
from app.services import Services, SharedParts
from app.settings import Settings, get_settings
from index import Embedder

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    shared: SharedParts | None = None,
) -> FastAPI:
    """``settings`` default to the environment; ``embedder`` may be shared (tests); ``shared``:
    models served by other processes (``sieve serve --ray``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        observers = [app.state.metrics.observe]
        services = Services.build(settings, embedder, observers, shared)
        app.state.services = services
        app.state.gatekeeper = Gatekeeper(services)
        app.state.metrics.attach(services)
        try:
            yield
        finally:
            app.state.metrics.detach()
            app.state.gatekeeper.close()
            await services.aclose()

    app = FastAPI(
        title="Sieve",
        version="0.1.0",
        summary="Question answering over your documents, with pruned, cited context.",
        lifespan=lifespan,
        # served by app/api/routes/docs.py: local assets, a CSP, and SIEVE_PUBLIC_DOCS
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodySizeLimitMiddleware, settings=settings)  # 413 while streaming
    app.add_middleware(AuthFirstMiddleware)  # outside it: no key, no body read (401 first)
    if settings.cors_origin_list:  # the widget on other sites: POST /ask only
        app.add_middleware(PathCORSMiddleware, origins=settings.cors_origin_list)
    # metrics, request id and access log of every request; added last so it is outermost and
    # sees CORS preflights too (pure ASGI: streamed responses are not buffered)
    app.state.metrics = Metrics(version=app.version)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    app.include_router(health.router)  # public: status only, unless the admin key is sent
    app.include_router(web.router)  # public: the UI's static files (it sends the key itself)
    app.include_router(docs.router)  # /docs, /redoc, /openapi.json: keyed or not per settings
    # every other route: an API key (when auth is on), the rate limit, then the route's own
    # scope check (app/api/access.py)
    keyed = [Depends(get_principal)]
    for router in (
        documents.router,
        jobs.router,
        ask.router,
        graph.router,
        openai_compat.router,
        ollama.router,
        admin.router,
        metrics_routes.router,
    ):
        app.include_router(router, dependencies=keyed)
    return app
