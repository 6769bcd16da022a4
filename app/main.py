"""Assembles the FastAPI app: lifespan (models, index), routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.routes import ask, documents, graph, health
from app.services import Services
from app.settings import Settings, get_settings
from index import Embedder

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """``settings`` default to the environment; ``embedder`` may be shared (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings or get_settings(), embedder)
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    app = FastAPI(
        title="Sieve",
        version="0.1.0",
        summary="Question answering over your documents, with pruned, cited context.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(ask.router)
    app.include_router(graph.router)
    return app
