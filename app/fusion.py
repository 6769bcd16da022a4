"""Reciprocal-rank fusion (Cormack et al., 2009) of the retrievers' lists into one candidate
list (:func:`fuse`), and the passage order after pruning (:func:`rerank_order`): by the
pruner, by RRF of the retrieval and pruner orders, or by a blend of the pruner's best sentence
score with the bi-encoder's query-passage cosine."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from index import ChunkRecord
from pruner import PrunedContext

K = TypeVar("K", bound=Hashable)

RRF_K = 60  # the constant of the original paper; damps the weight of top ranks
RERANK_MODES = ("blend", "fused", "mix", "pruner")
# weight of the query-passage cosine in ``blend``, chosen by bench/rerank.py on SQuAD dev-split
# questions that are disjoint from the ones it reports on
BLEND_COSINE_WEIGHT = 3.0
# weight of the query-passage cosine in ``mix``, chosen by bench/heldout.py on the tune families
MIX_COSINE_WEIGHT = 2.0


def rrf(rankings: Sequence[Sequence[K]], k: int = RRF_K) -> list[tuple[K, float]]:
    """Fuse ranked lists of keys into one list of (key, score), best first; ties keep first-seen
    order. A key repeated in one list counts at its best rank only."""
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    scores: dict[K, float] = {}
    for ranking in rankings:
        seen: set[K] = set()
        for rank, key in enumerate(ranking):
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


@dataclass(frozen=True)
class Candidate:
    """A fused candidate: the chunk and, per retriever that found it, (1-based rank, score)."""

    chunk: ChunkRecord
    fused_score: float
    found_by: dict[str, tuple[int, float]]


def fuse(
    channels: dict[str, list[tuple[ChunkRecord, float]]], k: int, protect: int | None = None
) -> list[Candidate]:
    """Reciprocal-rank fusion of the retrievers' lists, cut to ``k`` candidates in fused order.

    The cut keeps each retriever's best ``protect`` chunks (default: ceil(k / (2 · retrievers))
    when there are several): plain RRF favours chunks that two retrievers agree on, and would
    otherwise drop the one chunk only the graph finds, the second hop of a multi-hop question.
    """
    chunks = {c.id: c for hits in channels.values() for c, _ in hits}
    found_by: dict[int, dict[str, tuple[int, float]]] = {}
    for name, hits in channels.items():
        for rank, (c, score) in enumerate(hits, 1):
            found_by.setdefault(c.id, {}).setdefault(name, (rank, score))
    fused = rrf([[c.id for c, _ in hits] for hits in channels.values()])
    if protect is None:
        protect = math.ceil(k / (2 * len(channels))) if len(channels) > 1 else 0
    protected = {c.id for hits in channels.values() for c, _ in hits[:protect]}
    first = [i for i, _ in fused if i in protected][:k]
    rest = [i for i, _ in fused if i not in protected][: k - len(first)]
    kept = set(first) | set(rest)
    return [Candidate(chunks[i], score, found_by[i]) for i, score in fused if i in kept]


def mix_scores(
    pruned: Sequence[PrunedContext],
    cosines: Sequence[float],
    weight: float = MIX_COSINE_WEIGHT,
) -> list[float]:
    """The pruner's rank head plus ``weight`` × the bi-encoder cosine of question and passage:
    the cross-encoder's judgement, held to what MiniLM already knows on text unlike its
    training data (bench/heldout.py: the rank head alone falls below the cosine there)."""
    return [p.rerank_score + weight * c for p, c in zip(pruned, cosines, strict=True)]


def blend_scores(
    pruned: Sequence[PrunedContext],
    cosines: Sequence[float],
    weight: float = BLEND_COSINE_WEIGHT,
) -> list[float]:
    """The pruner's best sentence keep-probability plus ``weight`` × the bi-encoder cosine of
    question and passage: the token head says whether a passage holds an answer sentence, the
    bi-encoder whether the passage is about the question's topic."""
    return [
        max(p.sentence_scores, default=0.0) + weight * c
        for p, c in zip(pruned, cosines, strict=True)
    ]


def rerank_order(
    pruned: Sequence[PrunedContext],
    mode: str = "fused",
    cosines: Sequence[float] | None = None,
    weight: float = BLEND_COSINE_WEIGHT,
) -> list[int]:
    """Candidate indices, best first. ``pruner``: by the pruner's passage score alone.
    ``fused``: reciprocal-rank fusion of the retrieval order (the input order) and the pruner's,
    so a reranker that is weak on some text cannot sink the retrievers' best candidates, while
    passages both rank high rise to the top. ``blend``: by :func:`blend_scores` (needs the
    query-passage ``cosines``). ``mix``: by :func:`mix_scores` (the same cosines)."""
    if mode not in RERANK_MODES:
        raise ValueError(f"rerank mode must be one of {list(RERANK_MODES)}, got {mode!r}")
    if mode in ("blend", "mix"):
        if cosines is None:
            raise ValueError(f"rerank mode {mode!r} needs the query-passage cosines")
        if mode == "blend":
            scores = blend_scores(pruned, cosines, weight)
        else:
            scores = mix_scores(pruned, cosines, weight)
        return sorted(range(len(pruned)), key=lambda i: -scores[i])
    by_pruner = sorted(range(len(pruned)), key=lambda i: -pruned[i].rerank_score)
    if mode == "pruner":
        return by_pruner
    return [i for i, _ in rrf([list(range(len(pruned))), by_pruner])]
