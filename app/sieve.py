"""The facade: what a user does with Sieve — ask (whole or streamed), ingest, delete — over
one process's collections and pipeline.

The REST routes, the chat-compatible endpoints and the CLI call these methods, never a
collection or the pipeline directly, so every entry point gets the same checks (the server's
request limits, an unknown collection, an empty question, back-pressure) in the same order:
before any work is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from app.collection import IngestResult, OnCommit
from app.collections import Collections
from app.parsing import ParsedDocument
from app.pipeline import Answer, AskEvent, AskOptions, Pipeline
from app.prepared import Prepared, prepare_all
from app.settings import Settings
from index import DocumentRecord, UnknownCollectionError


class RequestLimitError(ValueError):
    """A request asks for more work than the server allows (→ 422)."""


class Sieve:
    def __init__(
        self, settings: Settings, collections: Collections, pipeline: Pipeline | None = None
    ) -> None:
        """``pipeline`` None: ingestion and deletion only (``sieve ingest`` loads no pruner)."""
        self.settings = settings
        self.collections = collections
        self._pipeline = pipeline

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("this Sieve was built for ingestion only: it has no pipeline")
        return self._pipeline

    # ---- asking ---------------------------------------------------------------------------
    def options(self, **overrides: Any) -> AskOptions:
        """The configured defaults, with every override that is not None applied; a
        ``candidates``, ``top_k`` or ``hops`` over its configured maximum is refused (422)."""
        s = self.settings
        for name, most in (
            ("candidates", s.max_candidates),
            ("top_k", s.max_top_k),
            ("hops", s.max_hops),
        ):
            value = overrides.get(name)
            if value is not None and value > most:
                raise RequestLimitError(
                    f"{name} is {value}, over this server's maximum of {most} "
                    f"(SIEVE_MAX_{name.upper()})"
                )
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return replace(self.default_options(), **chosen)

    def default_options(self) -> AskOptions:
        s = self.settings
        return AskOptions(
            top_k=s.top_k,
            candidates=s.candidates,
            prune_threshold=s.prune_threshold,
            max_context_tokens=s.max_context_tokens,
            llm=s.llm,
            retrieval=s.retrieval,
            hops=s.hops,
        )

    def admit(self) -> None:
        """503 (``OverloadedError``) while the server answers as many questions as it allows."""
        self.pipeline.admit()

    def check(self, question: str, options: AskOptions) -> None:
        """Raise for a question that would be refused (→ 4xx), before any work is done."""
        if not self.collections.exists(options.collection):
            raise UnknownCollectionError(options.collection)
        self.pipeline.check(question, options)

    async def ask(self, question: str, options: AskOptions) -> Answer:
        self.check(question, options)
        return await self.pipeline.ask(question, options)

    async def ask_stream(
        self, question: str, options: AskOptions, admitted: bool = False
    ) -> AsyncIterator[AskEvent]:
        """The answer's stages as they finish, once the question is checked and admitted: a
        refusal is raised by this call, before any response starts (an error status, never a
        stream that starts and then fails). ``admitted``: the caller admitted the question
        before work of its own (a chat's rewrite), which is not refused again."""
        self.check(question, options)
        if not admitted:
            self.admit()
        return self.pipeline.ask_stream(question, options)

    # ---- the knowledge graph --------------------------------------------------------------
    def entities(self, collection: str, query: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Entities of ``collection``'s graph whose name contains ``query``: (total, first
        ``limit``); see :meth:`KnowledgeGraph.find_entities`."""
        return self.collections.get(collection).graph.find_entities(query, limit)

    def neighbourhood(self, collection: str, entity: str, limit: int) -> dict[str, Any] | None:
        """One entity's mentions and neighbours (None: no such entity)."""
        return self.collections.get(collection).graph.neighbourhood(entity, limit)

    # ---- documents ------------------------------------------------------------------------
    def ingest(
        self,
        collection: str,
        documents: Sequence[tuple[ParsedDocument, str]],
        external_ids: Sequence[str | None] | None = None,
        on_commit: OnCommit | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IngestResult]:
        """Chunk parsed documents (with their source names) and :meth:`ingest_prepared` them."""
        if not self.collections.exists(collection):
            raise UnknownCollectionError(collection)
        prepared = prepare_all(documents, self.settings.chunking, external_ids)
        return self.ingest_prepared(collection, prepared, None, on_commit, progress)

    def ingest_prepared(
        self,
        collection: str,
        prepared: Sequence[Prepared],
        vectors: Sequence[np.ndarray] | None = None,
        on_commit: OnCommit | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IngestResult]:
        """Index documents already chunked (an upload's check did it; ``vectors``: embedded
        elsewhere, by ``sieve ingest --ray``) into ``collection``, all or nothing
        (``UnknownCollectionError`` if it was never created). ``on_commit(cursor, results)``
        runs inside the SQLite transaction that stores them; ``progress(embedded, total)``:
        see :meth:`Collection.ingest_prepared`."""
        return self.collections.get(collection).ingest_prepared(
            prepared, vectors, on_commit=on_commit, progress=progress
        )

    def delete(self, collection: str, document_ids: Sequence[str]) -> list[DocumentRecord]:
        """Delete documents of one collection, all or nothing (``DocumentNotFoundError`` for
        the first unknown id, and nothing is deleted)."""
        return self.collections.get(collection).delete_many(document_ids)
