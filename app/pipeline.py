"""Question answering: embed → vector search → graph search → fuse → prune → budget → LLM.

Each stage is timed. CPU-bound stages run in a worker thread so the event loop stays free for
other requests while one question is being embedded or pruned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from anyio import to_thread

from app.fusion import rrf
from app.library import Library
from app.llm import LLM, ContextSentence, Passage, render_context
from index import ChunkRecord, Embedder, SentenceRecord
from pruner import PrunedContext, Pruner

ABSTAIN_ANSWER = "I could not find an answer to that in the documents."


class UnknownBackendError(ValueError):
    pass


class CandidateSource(Protocol):
    """A retriever besides the vector index (the knowledge graph, later): chunks, best first."""

    name: str

    def search(
        self, question: str, query: np.ndarray, k: int
    ) -> list[tuple[ChunkRecord, float]]: ...


class NoGraph:
    """Placeholder for graph search until the knowledge graph exists: finds nothing."""

    name = "graph"

    def search(self, question: str, query: np.ndarray, k: int) -> list[tuple[ChunkRecord, float]]:
        return []


@dataclass(frozen=True)
class AskOptions:
    top_k: int
    candidates: int
    prune_threshold: float | None
    max_context_tokens: int
    llm: str


@dataclass(frozen=True)
class Citation:
    n: int
    chunk: ChunkRecord
    title: str
    score: float  # the pruner's reranking score
    kept: list[SentenceRecord]
    kept_scores: list[float]
    pruned_count: int


@dataclass
class Answer:
    answer: str
    abstained: bool
    llm: str
    citations: list[Citation]
    context: str
    candidates: int
    tokens_before: int
    tokens_after: int
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def compression(self) -> float:
        return 1.0 - self.tokens_after / self.tokens_before if self.tokens_before else 0.0


class Pipeline:
    def __init__(
        self,
        library: Library,
        embedder: Embedder,
        pruner: Pruner,
        llms: dict[str, LLM],
        graph: CandidateSource | None = None,
    ) -> None:
        self.library = library
        self.embedder = embedder
        self.pruner = pruner
        self.llms = llms
        self.graph = graph or NoGraph()

    async def ask(self, question: str, options: AskOptions) -> Answer:
        question = question.strip()
        if not question:
            raise ValueError("question must not be empty")
        llm = self.llms.get(options.llm)
        if llm is None:
            raise UnknownBackendError(
                f"unknown llm backend {options.llm!r}; available: {sorted(self.llms)}"
            )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        answer = await to_thread.run_sync(self._retrieve_and_prune, question, options, timings)
        if not answer.citations:
            answer.answer, answer.abstained = ABSTAIN_ANSWER, True
        else:
            with _timed(timings, "llm"):
                passages = [_passage(c) for c in answer.citations]
                answer.answer = await llm.generate(question, passages)
        answer.llm = llm.name
        timings["total"] = (time.perf_counter() - started) * 1000
        answer.timings_ms = timings
        return answer

    def _retrieve_and_prune(
        self, question: str, options: AskOptions, timings: dict[str, float]
    ) -> Answer:
        with _timed(timings, "embed"):
            query = self.embedder.encode([question])[0]
        with _timed(timings, "vector_search"):
            vector_hits = self.library.search(query, options.candidates)
        with _timed(timings, "graph_search"):
            graph_hits = self.graph.search(question, query, options.candidates)
        with _timed(timings, "fuse"):
            chunks = {c.id: c for c, _ in vector_hits + graph_hits}
            fused = rrf([[c.id for c, _ in vector_hits], [c.id for c, _ in graph_hits]])
            candidates = [chunks[i] for i, _ in fused[: options.candidates]]
        with _timed(timings, "prune"):
            pruned = self.pruner.process(
                question,
                [[s.text for s in c.sentences] for c in candidates],
                options.prune_threshold,
            )
        with _timed(timings, "budget"):
            citations, before, after, context = self._budget(candidates, pruned, options)
        return Answer(
            answer="",
            abstained=False,
            llm="",
            citations=citations,
            context=context,
            candidates=len(candidates),
            tokens_before=before,
            tokens_after=after,
        )

    def _budget(
        self, candidates: list[ChunkRecord], pruned: list[PrunedContext], options: AskOptions
    ) -> tuple[list[Citation], int, int, str]:
        """Best pruned passages first, whole sentences, until the token budget is spent."""
        counts = self.embedder.count_tokens([s.text for c in candidates for s in c.sentences])
        tokens_of: dict[tuple[int, int], int] = {}
        pos = 0
        for c in candidates:
            for s in c.sentences:
                tokens_of[(c.id, s.index)] = counts[pos]
                pos += 1
        ranked = sorted(zip(candidates, pruned, strict=True), key=lambda cp: -cp[1].rerank_score)
        citations: list[Citation] = []
        used, full = 0, False
        for chunk, result in ranked:
            if len(citations) == options.top_k or full:
                break
            kept: list[SentenceRecord] = []
            for i in result.kept:
                cost = tokens_of[(chunk.id, i)]
                if used + cost > options.max_context_tokens:
                    full = True
                    break
                kept.append(chunk.sentences[i])
                used += cost
            if kept:
                citations.append(
                    Citation(
                        n=len(citations) + 1,
                        chunk=chunk,
                        title=self._title(chunk),
                        score=result.rerank_score,
                        kept=kept,
                        kept_scores=[result.sentence_scores[s.index] for s in kept],
                        pruned_count=len(chunk.sentences) - len(kept),
                    )
                )
        context = render_context([_passage(c) for c in citations])
        return citations, sum(counts), used, context

    def _title(self, chunk: ChunkRecord) -> str:
        record = self.library.store.get_document(chunk.document_id)
        return record.title if record else ""


def _passage(c: Citation) -> Passage:
    return Passage(
        n=c.n,
        title=c.title,
        heading_path=c.chunk.heading_path,
        sentences=[
            ContextSentence(s.text, score) for s, score in zip(c.kept, c.kept_scores, strict=True)
        ],
    )


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 3)
