"""Question answering: embed → vector / lexical / graph search → fuse → prune → budget → LLM.

The retrieval mode picks the retrievers: ``vector`` (FAISS), ``lexical`` (BM25), ``graph``
(personalised PageRank over the knowledge graph) or ``hybrid`` (all three, fused by
reciprocal-rank fusion). When the graph holds typed relations about the question's entities it
adds a "graph facts" pseudo-passage; the pruner reranks and prunes every candidate, that passage
included. Each stage is timed. CPU-bound stages run in a
worker thread so the event loop stays free for other requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from anyio import CapacityLimiter, from_thread, to_thread

from app.answers import (
    Answer,
    AskEvent,
    AskOptions,
    Citation,
    ContextReady,
    Finished,
    Retrieved,
    Token,
)
from app.chain import HopLimits
from app.collections import Collections
from app.context import assemble_context, passage_of, score_answers
from app.explain import explain
from app.follow_up import FollowUp, FollowUps
from app.fusion import BLEND_COSINE_WEIGHT, MIX_COSINE_WEIGHT, Candidate, fuse, rerank_order
from app.hops import GRAPH_FACTS_ID, FollowUpFn, Hops, Passes
from app.llm import LLM, LLMError, Passage, TextCompleter
from app.retrieval import GRAPH_FACTS_TITLE, Retrieval, timed
from app.retrieval_modes import (
    RETRIEVAL_MODES,
    RETRIEVERS,
    UnknownRetrievalError,
    retrievers_of,
)
from graph import GraphRetriever, GraphSearchResult, KnowledgeGraph
from index import DEFAULT_COLLECTION, ChunkRecord, Embedder
from pruner import BlendedPruner, PrunedContext, Pruner
from pruner.answer import ANSWER_COSINE_WEIGHT

logger = logging.getLogger(__name__)

__all__ = [  # the answer types and fusion helpers are re-exported: callers import them here
    "ABSTAIN_ANSWER",
    "GRAPH_FACTS_ID",
    "GRAPH_FACTS_TITLE",
    "RETRIEVAL_MODES",
    "RETRIEVERS",
    "Answer",
    "AskEvent",
    "AskOptions",
    "Candidate",
    "Citation",
    "ContextReady",
    "Finished",
    "OverloadedError",
    "Pipeline",
    "Retrieved",
    "Token",
    "UnknownBackendError",
    "UnknownRetrievalError",
    "fuse",
    "rerank_order",
]

ABSTAIN_ANSWER = "I could not find an answer to that in the documents."


class UnknownBackendError(ValueError):
    pass


class OverloadedError(RuntimeError):
    """Too many questions are being answered at once; the client should retry shortly."""

    retry_after_s = 2


class Pipeline:
    def __init__(
        self,
        collections: Collections,
        embedder: Embedder,
        pruner: Pruner,
        llms: dict[str, LLM],
        graph: Callable[[KnowledgeGraph], GraphRetriever] = GraphRetriever,
        encode: Callable[[Sequence[str]], np.ndarray] | None = None,
        rerank: str = "fused",
        max_pending: int = 0,
        threads: int = 4,
        blend_weight: float = BLEND_COSINE_WEIGHT,
        mix_weight: float = MIX_COSINE_WEIGHT,
        hop_limits: HopLimits | None = None,
        hop_llm: bool = False,
        hop_llm_timeout_s: float = 10.0,
        fallback: LLM | None = None,
        observers: Sequence[Callable[[Answer], None]] = (),
    ) -> None:
        rerank_order([], rerank, [])  # validates the mode early
        if max_pending < 0:
            raise ValueError(f"max_pending must be >= 0, got {max_pending}")
        self.max_pending = max_pending  # questions in progress at once (0: no limit)
        # the threads that retrieve and prune: their own, so a burst of questions never takes the
        # pool that serves the light routes (document lists, jobs, health)
        self.limiter = CapacityLimiter(threads)
        self._pending = 0  # only touched on the event loop, so no lock
        self.collections = collections
        self.embedder = embedder
        # the service passes a cached encoder (an empty one is falsy: it has a length)
        self.encode = embedder.encode if encode is None else encode
        self.pruner = pruner
        self.llms = llms
        self.retrieval = Retrieval(collections, self.encode, graph)
        self.rerank = rerank
        self.blend_weight = blend_weight
        self.mix_weight = mix_weight
        self.hop_limits = hop_limits or HopLimits()
        self.hop_llm = hop_llm  # ask the LLM for the missing fact between hops
        self.follow_ups = FollowUps(timeout_s=hop_llm_timeout_s)
        r = self.retrieval
        self.hops = Hops(pruner, r.graph, r.search, r.title, self.encode, self.hop_limits)
        # called with every finished answer (metrics); must be cheap and must not raise
        self.observers = tuple(observers)
        # answers instead of a failed LLM, from the same context (None: the failure is raised)
        self.fallback = fallback

    def check(self, question: str, options: AskOptions) -> tuple[str, LLM]:
        """The stripped question and the answering backend; raises before any work is done
        (a streaming response must fail before its first byte, not halfway)."""
        question = question.strip()
        if not question:
            raise ValueError("question must not be empty")
        llm = self.llms.get(options.llm)
        if llm is None:
            raise UnknownBackendError(
                f"unknown llm backend {options.llm!r}; available: {sorted(self.llms)}"
            )
        retrievers_of(options.retrieval)  # an unknown mode fails before any work
        return question, llm

    def admit(self) -> None:
        """Refuse a new question while ``max_pending`` are in progress: on a CPU-bound pruner
        a longer queue only makes everyone wait longer (call before streaming, for a 503)."""
        if self.max_pending and self._pending >= self.max_pending:
            raise OverloadedError(
                f"{self._pending} questions are being answered; try again in a few seconds"
            )

    @contextmanager
    def _slot(self) -> Iterator[None]:
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    async def ask(self, question: str, options: AskOptions) -> Answer:
        self.admit()
        with self._slot():
            return await self._ask(question, options)

    async def _ask(self, question: str, options: AskOptions) -> Answer:
        question, llm = self.check(question, options)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        answer = await to_thread.run_sync(
            self._retrieve_and_prune,
            question,
            options,
            timings,
            self._follow_up(llm, options),
            limiter=self.limiter,
        )
        if not answer.citations:
            answer.answer, answer.abstained = ABSTAIN_ANSWER, True
        else:
            with timed(timings, "llm"):
                passages = [passage_of(c) for c in answer.citations]
                answer.answer = await self._generate(llm, question, passages, answer)
        return self._finish(answer, llm, timings, started)

    async def ask_stream(self, question: str, options: AskOptions) -> AsyncIterator[AskEvent]:
        """The stages of :meth:`ask` as they finish: :class:`Retrieved`, then
        :class:`ContextReady` (what the LLM will see), then :class:`Token` pieces, then
        :class:`Finished` with the same Answer ``ask`` returns. Call :meth:`check` and :meth:`admit`
        first."""
        with self._slot():
            async for event in self._ask_stream(question, options):
                yield event

    async def _ask_stream(self, question: str, options: AskOptions) -> AsyncIterator[AskEvent]:
        question, llm = self.check(question, options)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        fused, graph = await to_thread.run_sync(
            self._retrieve, question, options, timings, limiter=self.limiter
        )
        yield Retrieved(
            options.retrieval,
            len(fused),
            _retriever_counts(fused, options.retrieval),
            dict(timings),
            options.hops,
        )
        answer = await to_thread.run_sync(
            self._prune,
            question,
            options,
            fused,
            graph,
            timings,
            self._follow_up(llm, options),
            limiter=self.limiter,
        )
        answer.timings_ms = dict(timings)  # the stages so far; the final answer has all
        yield ContextReady(answer)
        if not answer.citations:
            answer.answer, answer.abstained = ABSTAIN_ANSWER, True
            yield Token(ABSTAIN_ANSWER)
        else:
            pieces: list[str] = []
            llm_started = time.perf_counter()
            passages = [passage_of(c) for c in answer.citations]
            async for piece in self._stream(llm, question, passages, answer):
                if not pieces:  # the streamed text starts like the final (stripped) answer
                    piece = piece.lstrip()
                    if not piece:
                        continue
                    timings["llm_first_token"] = _ms_since(llm_started)
                pieces.append(piece)
                yield Token(piece)
            timings["llm"] = _ms_since(llm_started)
            answer.answer = "".join(pieces).strip()
        yield Finished(self._finish(answer, llm, timings, started))

    def _finish(
        self, answer: Answer, llm: LLM, timings: dict[str, float], started: float
    ) -> Answer:
        answer.llm = answer.llm or llm.name  # already set when the fallback answered
        timings["total"] = _ms_since(started)
        answer.timings_ms = timings
        self._notify(answer)
        return answer

    async def _generate(
        self, llm: LLM, question: str, passages: list[Passage], answer: Answer
    ) -> str:
        try:
            return await llm.generate(question, passages)
        except LLMError as exc:
            fallback = self._degrade(llm, exc, answer)
        return await fallback.generate(question, passages)

    async def _stream(
        self, llm: LLM, question: str, passages: list[Passage], answer: Answer
    ) -> AsyncIterator[str]:
        """``llm``'s pieces; if it fails before any text, the fallback's. After text was sent
        the failure is raised: an answer is never half one backend's, half another's."""
        sent = False
        try:
            async for piece in llm.stream(question, passages):
                sent = sent or bool(piece.strip())
                yield piece
            return
        except LLMError as exc:
            if sent:
                raise
            fallback = self._degrade(llm, exc, answer)
        async for piece in fallback.stream(question, passages):
            yield piece

    def _degrade(self, llm: LLM, exc: LLMError, answer: Answer) -> LLM:
        """The fallback backend, with ``answer`` marked degraded; re-raises ``exc`` when there
        is no fallback (or the failed backend is the fallback)."""
        fallback = self.fallback
        if fallback is None or fallback is llm:
            raise exc
        logger.warning("llm %r failed, answering with %r: %s", llm.name, fallback.name, exc)
        answer.llm = fallback.name
        how = "extractively" if fallback.name == "extractive" else f"by {fallback.name!r}"
        answer.degraded = f"llm {llm.name!r} unavailable: {exc} — answered {how}"
        return fallback

    def _notify(self, answer: Answer) -> None:
        for observe in self.observers:
            observe(answer)

    def _retrieve_and_prune(
        self,
        question: str,
        options: AskOptions,
        timings: dict[str, float],
        follow_up: FollowUpFn | None = None,
    ) -> Answer:
        fused, graph = self._retrieve(question, options, timings)
        return self._prune(question, options, fused, graph, timings, follow_up)

    def _retrieve(
        self, question: str, options: AskOptions, timings: dict[str, float]
    ) -> tuple[list[Candidate], GraphSearchResult | None]:
        return self.retrieval.retrieve(
            question, options.retrieval, options.candidates, timings, options.collection
        )

    def _prune(
        self,
        question: str,
        options: AskOptions,
        fused: list[Candidate],
        graph_result: GraphSearchResult | None,
        timings: dict[str, float],
        follow_up: FollowUpFn | None = None,
    ) -> Answer:
        candidates = [c.chunk for c in fused]
        texts = [[s.text for s in c.sentences] for c in candidates]
        passes = self._first_pass(question, options, candidates, texts, timings)
        chained = Passes(fused, texts, *passes)
        if options.hops > 0:
            with timed(timings, "hops"):
                chained = self.hops.run(question, options, chained, follow_up)
        answer = self._assemble(question, options, chained, timings)
        with timed(timings, "answer_scores"):
            weight = (
                self.pruner.blend.answer_cosine_weight
                if isinstance(self.pruner, BlendedPruner)
                else ANSWER_COSINE_WEIGHT
            )
            answer.citations = score_answers(self.encode, question, answer.citations, weight)
        answer.retrieval = options.retrieval
        answer.retrievers = _retriever_counts(fused, options.retrieval)
        hopped = [c for c in answer.citations if c.hop > 0]  # what the hops added and sent
        answer.hops = max((c.hop for c in hopped), default=0)
        answer.bridges = list(dict.fromkeys(c.bridge for c in hopped if c.bridge))
        if options.explain:
            answer.explain = explain(chained, graph_result, self.retrieval.title)
        return answer

    def _first_pass(
        self,
        question: str,
        options: AskOptions,
        candidates: list[ChunkRecord],
        texts: list[list[str]],
        timings: dict[str, float],
    ) -> tuple[list[PrunedContext], list[int], set[int] | None]:
        """Every candidate scored and ordered: (results, order, positions whose sentences are
        decided). A blended pruner needs each sentence's embedding, so the passages are ordered
        on the model's scores first and then refined best first only until the context has its
        ``top_k`` (all of them with ``explain``); the others keep nothing until refined."""
        pruner = self.pruner
        if not isinstance(pruner, BlendedPruner):
            with timed(timings, "prune"):
                # A chunk's title (document title + heading path) goes into its context header,
                # so its first sentence is body text and is kept only on its own merit.
                pruned = pruner.process(
                    question, texts, options.prune_threshold, always_select_title=False
                )
            with timed(timings, "rerank"):
                order = self.order(question, candidates, pruned, options.collection)
            return pruned, order, None
        with timed(timings, "prune"):
            raw = pruner.raw(question, texts)
        with timed(timings, "rerank"):
            order = self.order(question, candidates, raw, options.collection)
        with timed(timings, "sentence_blend"):
            wanted = len(order) if options.explain else options.top_k
            pruned, done = pruner.refine_in_order(
                question, texts, raw, order, wanted, options.prune_threshold
            )
        return pruned, order, set(order[:done])

    def _follow_up(self, llm: LLM, options: AskOptions) -> FollowUpFn | None:
        """What to call between hops to ask ``llm`` for the missing fact: only with
        ``hop_llm`` on, hops asked for, and a backend that follows instructions. It runs on a
        request's worker thread and waits for the call on the event loop."""
        if not (self.hop_llm and options.hops and isinstance(llm, TextCompleter)):
            return None
        follow_ups = self.follow_ups

        def ask(question: str, evidence: list[str]) -> FollowUp:
            try:
                return from_thread.run(follow_ups.ask, llm, question, evidence)
            except RuntimeError as exc:  # not on a request's worker thread: no event loop
                logger.warning("follow-up query not asked: %s", exc)
                return FollowUp(None, "failed")

        return ask

    def _assemble(
        self, question: str, options: AskOptions, p: Passes, timings: dict[str, float]
    ) -> Answer:
        """The context within the budget. When the budget left out passages a blended pruner
        has not refined yet reaches, those are refined (with the question) and the context is
        assembled again, so it is the same as if every passage had been refined."""
        # what the hops found comes on top of top_k (bounded by the hop limits): a hop adds
        # passages to the context, it never pushes out one the first pass chose
        found = sum(1 for i, link in p.links.items() if link.hop > 0 and p.pruned[i].kept)
        options = replace(options, top_k=options.top_k + found)
        with timed(timings, "budget"):
            answer = self._budget(p, options)
        pruner = self.pruner
        if (
            isinstance(pruner, BlendedPruner)
            and p.refined is not None
            and len(answer.citations) < options.top_k
        ):
            rest = [i for i in p.order if i not in p.refined]
            if rest:
                with timed(timings, "sentence_blend"):
                    pruned = pruner.refine(
                        question, p.texts, p.pruned, rest, options.prune_threshold
                    )
                p = replace(p, pruned=pruned, refined=p.refined | set(rest))
                with timed(timings, "budget"):
                    answer = self._budget(p, options)
        return answer

    def order(
        self,
        question: str,
        candidates: Sequence[ChunkRecord],
        pruned: Sequence[PrunedContext],
        collection: str = DEFAULT_COLLECTION,
        mode: str | None = None,
    ) -> list[int]:
        """Candidate positions, best first, in the configured rerank mode (or ``mode``)."""
        mode = mode or self.rerank
        with_cosines = mode in ("blend", "mix")
        cosines = self.retrieval.cosines(question, candidates, collection) if with_cosines else None
        weight = self.mix_weight if mode == "mix" else self.blend_weight
        return rerank_order(pruned, mode, cosines, weight)

    def _budget(self, p: Passes, options: AskOptions) -> Answer:
        titles = {c.chunk.document_id: self.retrieval.title(c.chunk) for c in p.fused}
        hops = {
            p.fused[i].chunk.id: (link.hop, link.bridge, p.fused[link.source].chunk.id)
            for i, link in p.links.items()
        }
        return assemble_context(
            p.fused, p.pruned, options, p.order, self.embedder.count_tokens, titles, hops
        )


def _retriever_counts(fused: Sequence[Candidate], mode: str) -> dict[str, int]:
    return {name: sum(1 for c in fused if name in c.found_by) for name in retrievers_of(mode)}


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
