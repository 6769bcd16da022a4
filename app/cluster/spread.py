"""Collections spread over the cluster (``sieve serve --ray --collection-replicas K``).

The ``SieveCollections`` deployment answers for the collections: each of its K replicas keeps at
most ``--collections-per-replica`` collections open (their FAISS, BM25 and graph in memory),
least recently used first out, and Ray Serve's model multiplexing sends every request for a
collection to a replica that has it open (the collection name is the model id). The HTTP
replicas then hold no collection: their :class:`RemoteSieve` checks a request where it arrives
(auth, limits, an unknown collection, back-pressure) and sends the work — ask, ask_stream,
ingest, delete, the graph's entities and neighbourhoods — to the replica of its collection.

SQLite stays the source of truth and the single place of every write, so a collection opened
on a second replica (more load than one serves, or after an eviction) reads what the first
stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np

from app.collection import IngestResult, OnCommit
from app.collections import Collections
from app.pipeline import Answer, AskEvent, AskOptions, OverloadedError, Pipeline
from app.prepared import Prepared
from app.settings import Settings
from app.sieve import Sieve
from index import DocumentRecord

INGEST_TIMEOUT_S = 3600.0  # a collection replica that has not stored an upload by then failed
DELETE_TIMEOUT_S = 300.0
GRAPH_TIMEOUT_S = 300.0  # includes opening the collection on a replica that had it closed
ADMITTED = "admitted"  # a collection replica's first item of a stream: the question was admitted


def unwrapped(exc: BaseException) -> BaseException:
    """The exception a replica raised, not Ray's wrapper (whose text carries a traceback: an API
    error must say what the replica said, and only that); a full replica queue is a 503."""
    from ray.exceptions import RayTaskError
    from ray.serve.exceptions import BackPressureError

    if isinstance(exc, BackPressureError):
        return OverloadedError("the collection's replicas are busy; try again in a few seconds")
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


class RemoteSieve(Sieve):
    """:class:`Sieve` whose work runs on the replica of the request's collection; options, checks
    and admission stay here (refusals cost the cluster nothing)."""

    def __init__(
        self, settings: Settings, collections: Collections, pipeline: Pipeline, handle: Any
    ) -> None:
        super().__init__(settings, collections, pipeline)
        self.handle = handle

    def _for(self, collection: str, stream: bool = False) -> Any:
        return self.handle.options(multiplexed_model_id=collection, stream=stream)

    async def ask(self, question: str, options: AskOptions) -> Answer:
        self.check(question, options)
        self.admit()
        try:
            answer: Answer = await self._for(options.collection).ask.remote(question, options)
        except Exception as exc:
            raise unwrapped(exc) from None
        return answer

    async def ask_stream(
        self, question: str, options: AskOptions, admitted: bool = False
    ) -> AsyncIterator[AskEvent]:
        """Returns once the collection's replica admitted the question (its refusal, e.g. a
        503 when it answers as many as it allows, is raised here, before any response)."""
        self.check(question, options)
        if not admitted:
            self.admit()
        events = self._for(options.collection, stream=True).ask_stream.remote(question, options)
        try:
            first = await events.__anext__()
        except StopAsyncIteration:
            raise RuntimeError("a collection replica ended a stream it never admitted") from None
        except BaseException as exc:  # refused there, or this request was cancelled
            events.cancel()
            if isinstance(exc, Exception):
                raise unwrapped(exc) from None
            raise
        if first != ADMITTED:
            events.cancel()
            raise RuntimeError(f"a collection replica began a stream with {first!r}")
        return self._rest(events)

    async def _rest(self, events: Any) -> AsyncIterator[AskEvent]:
        """The remote stream's events; the remote work is cancelled when the client leaves (or
        the response is dropped) before the end."""
        ended = False
        try:
            async for event in events:
                yield event
            ended = True
        except Exception as exc:
            ended = True  # it failed there: nothing left to cancel
            raise unwrapped(exc) from None
        finally:
            if not ended:
                events.cancel()

    def entities(self, collection: str, query: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        found: tuple[int, list[dict[str, Any]]] = _result(
            self._for(collection).entities.remote(query, limit), GRAPH_TIMEOUT_S
        )
        return found

    def neighbourhood(self, collection: str, entity: str, limit: int) -> dict[str, Any] | None:
        found: dict[str, Any] | None = _result(
            self._for(collection).neighbourhood.remote(entity, limit), GRAPH_TIMEOUT_S
        )
        return found

    def ingest_prepared(
        self,
        collection: str,
        prepared: Sequence[Prepared],
        vectors: Sequence[np.ndarray] | None = None,
        on_commit: OnCommit | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IngestResult]:
        """On the collection's replica; ``on_commit`` travels there (it runs inside the
        transaction that stores the documents), ``progress`` does not (it is called once, here,
        when the documents are stored)."""
        call = self._for(collection).ingest_prepared.remote(list(prepared), vectors, on_commit)
        results: list[IngestResult] = _result(call, INGEST_TIMEOUT_S)
        if progress is not None:
            progress(len(prepared), len(prepared))
        return results

    def delete(self, collection: str, document_ids: Sequence[str]) -> list[DocumentRecord]:
        call = self._for(collection).delete.remote(list(document_ids))
        records: list[DocumentRecord] = _result(call, DELETE_TIMEOUT_S)
        return records


def _result(call: Any, timeout_s: float) -> Any:
    """A replica's answer to ``call`` (from a worker thread, never the event loop); past
    ``timeout_s`` the call is cancelled (best effort) and the client told to retry (503)."""
    try:
        return call.result(timeout_s=timeout_s)
    except TimeoutError:
        call.cancel()
        raise OverloadedError(
            f"the collection's replica did not answer within {timeout_s:g} s; try again later"
        ) from None
    except Exception as exc:
        raise unwrapped(exc) from None


class _Open:
    """One collection opened on a replica. Serve evicts it (least recently used) by calling
    ``__del__``; it is closed (its files saved) once no request of this replica uses it, and
    only if no newer ``_Open`` of the same name took its place meanwhile."""

    def __init__(self, collections: Collections, name: str, current: dict[str, _Open]) -> None:
        self.collections = collections
        self.name = name
        self.collection = collections.get(name)  # opened now (and reconciled with SQLite)
        self.current = current
        self.users = 0
        self.evicted = False
        self._lock = threading.Lock()  # eviction runs on a worker thread
        current[name] = self

    def use(self) -> None:
        with self._lock:
            self.users += 1

    def release(self) -> None:
        with self._lock:
            self.users -= 1
        self._close_if_done()

    def __del__(self) -> None:  # Serve's eviction (and perhaps the GC later: idempotent)
        self.evicted = True
        self._close_if_done()

    def _close_if_done(self) -> None:
        with self._lock:
            if not self.evicted or self.users > 0 or self.current.get(self.name) is not self:
                return
            del self.current[self.name]
        self.collections.close_one(self.name, expected=self.collection)


class CollectionsReplica:
    """Answers for the collections Ray Serve routes here; its services have no HTTP app, and
    the pruner and embedder they use are the model deployments."""

    def __init__(self, settings: Settings, pruner: Any, embedder: Any, per_replica: int) -> None:
        self.settings = settings
        self.pruner_handle = pruner
        self.embedder_handle = embedder
        self.per_replica = per_replica
        self.services: Any = None
        self.current: dict[str, _Open] = {}  # the open collections, by name

    async def _services(self) -> Any:
        if self.services is None:
            from app.cluster.serve import shared_models
            from app.services import Services

            shared = await shared_models(self.settings, self.pruner_handle, self.embedder_handle)
            # a collection is opened when a request for it is routed here, none before; the
            # HTTP replicas run the upload jobs
            shared = dataclasses.replace(shared, open_default=False, jobs=False)
            self.services = Services.build(self.settings, shared=shared)
        return self.services

    @contextlib.asynccontextmanager
    async def _sieve(self) -> AsyncIterator[Sieve]:
        """The services' facade, with the request's collection open (and kept open) meanwhile."""
        from ray import serve

        services = await self._services()
        opened = await self.open(serve.get_multiplexed_model_id())
        opened.use()
        try:
            sieve: Sieve = services.sieve
            yield sieve
        finally:
            opened.release()

    async def open(self, name: str) -> _Open:  # wrapped in @serve.multiplexed at build time
        services = await self._services()
        # loading FAISS, BM25 and the graph takes a while: not on the event loop
        return await asyncio.to_thread(_Open, services.collections, name, self.current)

    async def opened(self) -> list[str]:
        """The collections this replica holds open (after opening the request's)."""
        async with self._sieve():
            return sorted(c.name for c in self.services.collections.opened())

    async def ask(self, question: str, options: AskOptions) -> Answer:
        async with self._sieve() as sieve:
            return await sieve.ask(question, options)

    async def ask_stream(self, question: str, options: AskOptions) -> AsyncIterator[AskEvent | str]:
        """:data:`ADMITTED` once the question is admitted here, where the work runs (the HTTP
        replica waits for it before it answers: a refusal is still a 503), then the events."""
        async with self._sieve() as sieve:
            events = await sieve.ask_stream(question, options)
            yield ADMITTED
            async for event in events:
                yield event

    async def entities(self, query: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        from ray import serve

        async with self._sieve() as sieve:
            name = serve.get_multiplexed_model_id()
            return await asyncio.to_thread(sieve.entities, name, query, limit)

    async def neighbourhood(self, entity: str, limit: int) -> dict[str, Any] | None:
        from ray import serve

        async with self._sieve() as sieve:
            name = serve.get_multiplexed_model_id()
            return await asyncio.to_thread(sieve.neighbourhood, name, entity, limit)

    async def ingest_prepared(
        self,
        prepared: list[Prepared],
        vectors: Sequence[np.ndarray] | None,
        on_commit: OnCommit | None,
    ) -> list[IngestResult]:
        from ray import serve

        async with self._sieve() as sieve:
            name = serve.get_multiplexed_model_id()
            return await asyncio.to_thread(
                sieve.ingest_prepared, name, prepared, vectors, on_commit
            )

    async def delete(self, document_ids: list[str]) -> list[DocumentRecord]:
        from ray import serve

        async with self._sieve() as sieve:
            name = serve.get_multiplexed_model_id()
            return await asyncio.to_thread(sieve.delete, name, document_ids)
