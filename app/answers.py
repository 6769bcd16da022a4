"""What a question produces: its options, the streaming events, the answer and its citations."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.retrieval_modes import Retrieval
from index import DEFAULT_COLLECTION, ChunkRecord, SentenceRecord


@dataclass(frozen=True)
class AskOptions:
    top_k: int
    candidates: int
    prune_threshold: float | None
    max_context_tokens: int
    llm: str
    retrieval: Retrieval = "hybrid"
    explain: bool = False
    collection: str = DEFAULT_COLLECTION
    hops: int = 0  # extra hops after the first pass (app/chain.py); 0: one pass


@dataclass(frozen=True)
class Retrieved:
    """Streaming event: the retrievers are done (candidates fused, not yet reranked)."""

    retrieval: str
    candidates: int
    retrievers: dict[str, int]
    timings_ms: dict[str, float]
    hops: int = 0  # extra hops asked for (the context says how many added a passage)


@dataclass(frozen=True)
class ContextReady:
    """Streaming event: reranked, pruned and budgeted; ``answer.answer`` is still empty."""

    answer: Answer


@dataclass(frozen=True)
class Token:
    """Streaming event: a piece of the answer text."""

    text: str


@dataclass(frozen=True)
class Finished:
    """Streaming event: the complete answer, as :meth:`Pipeline.ask` returns it."""

    answer: Answer


AskEvent = Retrieved | ContextReady | Token | Finished


@dataclass(frozen=True)
class Citation:
    n: int
    chunk: ChunkRecord
    title: str
    score: float  # the pruner's reranking score
    kept: list[SentenceRecord]
    kept_scores: list[float]
    pruned_count: int  # sentences not sent: pruned, or kept by the pruner but over the budget
    found_by: dict[str, tuple[int, float]] = field(default_factory=dict)
    sentence_scores: list[float] = field(default_factory=list)  # every sentence of the chunk
    over_budget: frozenset[int] = frozenset()  # indices the pruner kept but the budget cut
    answer_scores: list[float] = field(default_factory=list)  # per kept sentence (pruner.answer)
    hop: int = 0  # 0: the first pass found it; n: the n-th extra hop (app/chain.py)
    bridge: str | None = None  # the entity that led the hop to it
    led_by: int | None = None  # the citation number of the passage it follows in the chain


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
    # what left the top_k reranked passages (those tokens_before counts), and why: the pruner
    # dropped it, or the pruner kept it and the token budget had no room (a passage that
    # sends nothing loses its header too, counted with its sentences' cut)
    sentences_pruned: int = 0
    sentences_over_budget: int = 0
    tokens_pruned: int = 0
    tokens_over_budget: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    retrieval: Retrieval = "hybrid"
    retrievers: dict[str, int] = field(default_factory=dict)  # candidates found by each
    explain: dict[str, object] | None = None
    degraded: str | None = None  # why the fallback answered instead of the chosen LLM
    hops: int = 0  # extra hops that added a passage to the candidates (app/chain.py)
    bridges: list[str] = field(default_factory=list)  # the bridge entities those hops followed

    @property
    def compression(self) -> float:
        return 1.0 - self.tokens_after / self.tokens_before if self.tokens_before else 0.0
