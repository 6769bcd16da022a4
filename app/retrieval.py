"""Retrieval over one collection: each retriever's hits (FAISS, BM25, the graph's personalised
PageRank), their fusion, and what the later stages read of the stored chunks (titles, stored
vectors). The pipeline (app/pipeline.py) and the hops (app/hops.py) search through it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Collection as Many
from contextlib import contextmanager

import numpy as np

from app.collection import Collection
from app.collections import Collections
from app.fusion import Candidate, fuse
from app.hops import GRAPH_FACTS_ID
from app.retrieval_modes import (
    RETRIEVAL_MODES,
    RETRIEVERS,
    UnknownRetrievalError,
    retrievers_of,
)
from graph import GraphRetriever, GraphSearchResult, KnowledgeGraph
from index import DEFAULT_COLLECTION, ChunkRecord, SentenceRecord

GRAPH_FACTS_TITLE = "Knowledge graph"
Encode = Callable[[Sequence[str]], np.ndarray]


class Retrieval:
    def __init__(
        self,
        collections: Collections,
        encode: Encode,
        graph: Callable[[KnowledgeGraph], GraphRetriever] = GraphRetriever,
    ) -> None:
        self.collections = collections
        self.encode = encode  # the service's cached encoder
        self._graph_retriever = graph  # one per collection, over its graph
        self._graphs: dict[str, GraphRetriever] = {}

    def collection(self, collection: str = DEFAULT_COLLECTION) -> Collection:
        return self.collections.get(collection)

    def graph(self, collection: str = DEFAULT_COLLECTION) -> GraphRetriever:
        """The collection's graph retriever (made on first use, over its own graph)."""
        graph = self.collection(collection).graph
        found = self._graphs.get(collection)
        if found is None or found.graph is not graph:  # made anew when the collection reopened
            found = self._graphs[collection] = self._graph_retriever(graph)
        return found

    def search(
        self,
        query: str,
        retrievers: Sequence[str],
        k: int,
        collection: str = DEFAULT_COLLECTION,
        vector: np.ndarray | None = None,
        skip: Many[int] = (),
    ) -> list[Candidate]:
        """The ``k`` best chunks of ``retrievers``, fused, none of them in ``skip`` (chunk ids):
        each retriever looks ``len(skip)`` further and drops the known chunks before the fusion,
        so they take neither the new ones' places nor the places fusion keeps for each
        retriever's best (the graph's second hop). No graph-facts passage."""
        channels, _ = self.search_channels(query, retrievers, k + len(skip), {}, collection, vector)
        fresh = {
            name: [(c, x) for c, x in hits if c.id not in skip] for name, hits in channels.items()
        }
        return fuse(fresh, k)

    def retrieve(
        self,
        question: str,
        mode: str,
        k: int,
        timings: dict[str, float] | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> tuple[list[Candidate], GraphSearchResult | None]:
        """Candidates from the retrievers of ``mode`` over one collection, fused (see
        :func:`fuse`): at most ``k``, plus the graph-facts passage when the graph has facts."""
        timings = {} if timings is None else timings
        channels, graph_result = self.search_channels(
            question, retrievers_of(mode), k, timings, collection
        )
        with timed(timings, "fuse"):
            candidates = fuse(channels, k)
            if graph_result is not None and graph_result.facts:
                candidates.append(
                    Candidate(facts_chunk(graph_result.facts), 0.0, {"graph_facts": (1, 1.0)})
                )
        return candidates, graph_result

    def search_channels(
        self,
        question: str,
        retrievers: Sequence[str],
        k: int,
        timings: dict[str, float],
        collection: str = DEFAULT_COLLECTION,
        vector: np.ndarray | None = None,
    ) -> tuple[dict[str, list[tuple[ChunkRecord, float]]], GraphSearchResult | None]:
        """Each retriever's top ``k`` chunks of one collection with its own scores, best
        first; ``vector`` (when given) is the query vector of the vector and graph channels."""
        coll = self.collection(collection)
        graph = self.graph(collection)
        unknown = set(retrievers) - set(RETRIEVERS)
        if unknown:
            raise UnknownRetrievalError(
                f"unknown retrieval mode {sorted(unknown)[0]!r}; use one of {list(RETRIEVAL_MODES)}"
            )
        channels: dict[str, list[tuple[ChunkRecord, float]]] = {}
        query: np.ndarray | None = vector
        if query is None and ("vector" in retrievers or "graph" in retrievers):
            with timed(timings, "embed"):
                # the graph's unmatched mentions ride along in the same forward pass (the
                # encoder caches them for the graph's linking)
                extra = graph.mentions_to_embed(question) if "graph" in retrievers else []
                query = self.encode([question, *extra])[0]
        if "vector" in retrievers:
            with timed(timings, "vector_search"):
                channels["vector"] = coll.search(query, k)  # type: ignore[arg-type]
        if "lexical" in retrievers:
            with timed(timings, "lexical_search"):
                channels["lexical"] = coll.search_lexical(question, k)
        graph_result: GraphSearchResult | None = None
        if "graph" in retrievers:
            with timed(timings, "graph_search"):
                graph_result = graph.search(question, query, k)
                scores = dict(graph_result.chunks)
                chunks = coll.chunks(list(scores))
                channels["graph"] = [(c, scores[c.id]) for c in chunks]
            for stage, ms in graph_result.timings_ms.items():
                timings[f"graph_{stage}"] = ms
        return channels, graph_result

    def cosines(
        self, question: str, candidates: Sequence[ChunkRecord], collection: str
    ) -> list[float]:
        """Cosine of the question and each candidate (stored chunk vectors; the question's is
        cached from retrieval; the graph-facts passage is embedded here)."""
        query = self.encode([question])[0]
        ids = [c.id for c in candidates if c.id != GRAPH_FACTS_ID]
        found, vectors = self.collection(collection).store.embeddings_for(ids)
        by_id = dict(zip(found.tolist(), vectors, strict=True))
        for c in candidates:
            if c.id == GRAPH_FACTS_ID:
                by_id[c.id] = self.encode([c.text])[0]
        return [float(by_id[c.id] @ query) if c.id in by_id else 0.0 for c in candidates]

    def title(self, chunk: ChunkRecord) -> str:
        if chunk.id == GRAPH_FACTS_ID:
            return GRAPH_FACTS_TITLE
        record = self.collections.store.get_document(chunk.document_id)
        return record.title if record else ""


def facts_chunk(facts: Sequence[str]) -> ChunkRecord:
    """The graph facts as a pseudo-chunk (offsets are into its own text)."""
    sentences, pos = [], 0
    for i, fact in enumerate(facts):
        sentences.append(SentenceRecord(i, pos, pos + len(fact), fact))
        pos += len(fact) + 1
    text = " ".join(facts)
    return ChunkRecord(GRAPH_FACTS_ID, "", 0, (), text, 0, len(text), sentences)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        # a stage run twice (the blend's second refinement) adds up
        timings[stage] = round(timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000, 3)
