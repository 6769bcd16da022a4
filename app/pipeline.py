"""Question answering: embed → vector search → graph search → fuse → prune → budget → LLM.

Each stage is timed. CPU-bound stages run in a worker thread so the event loop stays free for
other requests while one question is being embedded or pruned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
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
    tokens_candidates: int  # all retrieved passages
    tokens_before: int  # the top_k reranked passages, unpruned
    tokens_after: int  # the context sent, after pruning and budget
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def compression(self) -> float:
        return 1.0 - self.tokens_after / self.tokens_before if self.tokens_before else 0.0


def rerank_order(pruned: Sequence[PrunedContext], mode: str = "fused") -> list[int]:
    """Candidate indices, best first. ``pruner``: by the pruner's passage score alone.
    ``fused``: reciprocal-rank fusion of the retrieval order (the input order) and the pruner's,
    so a reranker that is weak on some text cannot sink the retrievers' best candidates, while
    passages both rank high rise to the top."""
    by_pruner = sorted(range(len(pruned)), key=lambda i: -pruned[i].rerank_score)
    if mode == "pruner":
        return by_pruner
    if mode != "fused":
        raise ValueError(f"rerank mode must be 'fused' or 'pruner', got {mode!r}")
    return [i for i, _ in rrf([list(range(len(pruned))), by_pruner])]


class Pipeline:
    def __init__(
        self,
        library: Library,
        embedder: Embedder,
        pruner: Pruner,
        llms: dict[str, LLM],
        graph: CandidateSource | None = None,
        encode: Callable[[Sequence[str]], np.ndarray] | None = None,
        rerank: str = "fused",
    ) -> None:
        rerank_order([], rerank)  # validates the mode early
        self.library = library
        self.embedder = embedder
        self.encode = encode or embedder.encode  # the service passes a cached encoder
        self.pruner = pruner
        self.llms = llms
        self.graph = graph or NoGraph()
        self.rerank = rerank

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
            query = self.encode([question])[0]
        with _timed(timings, "vector_search"):
            vector_hits = self.library.search(query, options.candidates)
        with _timed(timings, "graph_search"):
            graph_hits = self.graph.search(question, query, options.candidates)
        with _timed(timings, "fuse"):
            chunks = {c.id: c for c, _ in vector_hits + graph_hits}
            fused = rrf([[c.id for c, _ in vector_hits], [c.id for c, _ in graph_hits]])
            candidates = [chunks[i] for i, _ in fused[: options.candidates]]
        with _timed(timings, "prune"):
            # A chunk's title (document title + heading path) goes into its context header, so
            # its first sentence is body text and is kept only on its own merit.
            pruned = self.pruner.process(
                question,
                [[s.text for s in c.sentences] for c in candidates],
                options.prune_threshold,
                always_select_title=False,
            )
        with _timed(timings, "budget"):
            answer = self._budget(candidates, pruned, options)
        return answer

    def _budget(
        self, candidates: list[ChunkRecord], pruned: list[PrunedContext], options: AskOptions
    ) -> Answer:
        """Best-reranked passages first (``rerank_order``), their kept sentences whole, within
        the token budget.

        ``tokens_before`` is what the top_k reranked passages would cost unpruned (what a RAG
        service without a pruner sends); ``tokens_after`` is what is sent, headers included.
        A sentence that does not fit is skipped, and smaller ones after it may still fit.
        """
        titles = {c.document_id: self._title(c) for c in candidates}
        ranked = [(candidates[i], pruned[i]) for i in rerank_order(pruned, self.rerank)]
        sentence_tokens = self.embedder.count_tokens(
            [s.text for c, _ in ranked for s in c.sentences]
        )
        header_tokens = self.embedder.count_tokens(
            [_header(1, titles[c.document_id], c) for c, _ in ranked]
        )
        cost: dict[tuple[int, int], int] = {}
        pos = 0
        for c, _ in ranked:
            for s in c.sentences:
                cost[(c.id, s.index)] = sentence_tokens[pos]
                pos += 1
        before = sum(header_tokens[: options.top_k]) + sum(
            cost[(c.id, s.index)] for c, _ in ranked[: options.top_k] for s in c.sentences
        )
        citations: list[Citation] = []
        used = 0
        for (chunk, result), header in zip(ranked, header_tokens, strict=True):
            if len(citations) == options.top_k:
                break
            kept: list[SentenceRecord] = []
            spent = header
            for i in result.kept:
                if used + spent + cost[(chunk.id, i)] <= options.max_context_tokens:
                    kept.append(chunk.sentences[i])
                    spent += cost[(chunk.id, i)]
            if not kept:
                continue
            used += spent
            citations.append(
                Citation(
                    n=len(citations) + 1,
                    chunk=chunk,
                    title=titles[chunk.document_id],
                    score=result.rerank_score,
                    kept=kept,
                    kept_scores=[result.sentence_scores[s.index] for s in kept],
                    pruned_count=len(chunk.sentences) - len(kept),
                )
            )
        return Answer(
            answer="",
            abstained=False,
            llm="",
            citations=citations,
            context=render_context([_passage(c) for c in citations]),
            candidates=len(candidates),
            tokens_candidates=sum(sentence_tokens),
            tokens_before=before,
            tokens_after=used,
        )

    def _title(self, chunk: ChunkRecord) -> str:
        record = self.library.store.get_document(chunk.document_id)
        return record.title if record else ""


def _header(n: int, title: str, chunk: ChunkRecord) -> str:
    return Passage(n, title, chunk.heading_path, []).header


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
