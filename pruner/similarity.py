"""Baseline pruner: keep the sentences whose embedding is close to the question's.

This is the extractive idea of RECOMP (Xu et al., 2024) without its training: each sentence is
scored by the cosine similarity of its MiniLM embedding with the question's, clipped to [0, 1].
The passage's reranking score is its best sentence score. The encoder is injected (the service
passes its already-loaded embedder, behind a cache), so this module needs no model of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pruner.base import PrunedContext, assemble, check_threshold

Encode = Callable[[Sequence[str]], np.ndarray]


class SimilarityPruner:
    name = "similarity"
    # Chosen on WikiQA train (answer-sentence selection), not on the benchmark data: see
    # bench/calibrate_similarity.py (highest threshold keeping >= 90 % of answer sentences).
    default_threshold = 0.30

    def __init__(self, encode: Encode) -> None:
        self._encode = encode

    def process(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        threshold: float | None = None,
        always_select_title: bool = False,
    ) -> list[PrunedContext]:
        threshold = check_threshold(self.default_threshold if threshold is None else threshold)
        if not question.strip():
            raise ValueError("question must not be empty")
        if not contexts:
            return []
        sentences = [s for ctx in contexts for s in ctx]
        vectors = self._encode([question, *sentences])  # (1 + N, D)
        scores = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
        out: list[PrunedContext] = []
        pos = 0
        for ctx in contexts:
            ctx_scores = scores[pos : pos + len(ctx)].tolist()
            pos += len(ctx)
            best = max(ctx_scores, default=0.0)
            out.append(assemble(ctx, ctx_scores, threshold, best, always_select_title))
        return out
