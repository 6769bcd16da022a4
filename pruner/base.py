"""The pruner contract: rerank candidate passages and keep only their relevant sentences.

A context is a passage given as its sentences (the caller split it, keeping offsets), so kept
sentence indices map straight back to sentence records. Scores are in [0, 1]; a sentence is kept
when its score is >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PrunedContext:
    kept: list[int]  # indices of the kept sentences, ascending
    sentence_scores: list[float]  # one per input sentence, in [0, 1]
    pruned_text: str  # kept sentences joined by spaces ("" when nothing is kept)
    rerank_score: float  # relevance of the whole passage to the question, in [0, 1]
    compression: float  # share of the passage's characters removed, in [0, 1]

    def nothing_kept(self) -> PrunedContext:
        """The same scores, every sentence dropped (a passage not decided on: it can reach
        no context)."""
        return replace(self, kept=[], pruned_text="", compression=1.0)


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
        always_select_title: bool = False,
    ) -> list[PrunedContext]:
        """One PrunedContext per context, in input order. With ``always_select_title`` the
        first sentence (a title) is kept whenever any other sentence of its context is. Its
        default differs between pruners (ContextPruner follows Provence: True), so callers
        that care pass it explicitly, as the pipeline does."""
        ...


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return threshold


def assemble(
    sentences: Sequence[str],
    scores: Sequence[float],
    threshold: float,
    rerank: float,
    keep_first: bool = False,
) -> PrunedContext:
    """Build the result for one context from per-sentence scores. ``keep_first`` adds sentence 0
    (a title) whenever anything else is kept; its score is left as the model gave it."""
    kept = [i for i, s in enumerate(scores) if s >= threshold]
    if keep_first and kept and kept[0] != 0:
        kept.insert(0, 0)
    total = sum(len(s) for s in sentences)
    kept_chars = sum(len(sentences[i]) for i in kept)
    return PrunedContext(
        kept=kept,
        sentence_scores=[float(s) for s in scores],
        pruned_text=" ".join(sentences[i] for i in kept),
        rerank_score=float(rerank),
        compression=1.0 - kept_chars / total if total else 0.0,
    )
