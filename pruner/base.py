"""The pruner contract: rerank candidate passages and keep only their relevant sentences.

A context is a passage given as its sentences (the caller split it, keeping offsets), so kept
sentence indices map straight back to sentence records. Scores are in [0, 1]; a sentence is kept
when its score is >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PrunedContext:
    kept: list[int]  # indices of the kept sentences, ascending
    sentence_scores: list[float]  # one per input sentence, in [0, 1]
    pruned_text: str  # kept sentences joined by spaces ("" when nothing is kept)
    rerank_score: float  # relevance of the whole passage to the question, in [0, 1]
    compression: float  # share of the passage's characters removed, in [0, 1]


@runtime_checkable
class Pruner(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def default_threshold(self) -> float: ...

    def process(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        threshold: float | None = None,
    ) -> list[PrunedContext]:
        """One PrunedContext per context, in input order."""
        ...


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return threshold


def assemble(
    sentences: Sequence[str], scores: Sequence[float], threshold: float, rerank: float
) -> PrunedContext:
    """Build the result for one context from per-sentence scores."""
    kept = [i for i, s in enumerate(scores) if s >= threshold]
    total = sum(len(s) for s in sentences)
    kept_chars = sum(len(sentences[i]) for i in kept)
    return PrunedContext(
        kept=kept,
        sentence_scores=[float(s) for s in scores],
        pruned_text=" ".join(sentences[i] for i in kept),
        rerank_score=float(rerank),
        compression=1.0 - kept_chars / total if total else 0.0,
    )
