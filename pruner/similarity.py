"""Baseline pruner: keep the sentences whose embedding is close to the question's.

This is the extractive idea of RECOMP (Xu et al., 2024) without its training: each sentence is
scored by the cosine similarity of its MiniLM embedding with the question's, clipped to [0, 1].
The passage's reranking score is its best sentence score. The encoder is injected (the service
passes its already-loaded embedder), so this module needs no model of its own.

Sentence embeddings are cached by text (bounded LRU): the same passages come back across
questions, and re-encoding them is the whole cost of this pruner.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from threading import Lock

import numpy as np

from pruner.base import PrunedContext, assemble, check_threshold

Encode = Callable[[Sequence[str]], np.ndarray]


class SimilarityPruner:
    name = "similarity"
    # Chosen on WikiQA train (answer-sentence selection), not on the benchmark data: see
    # bench/calibrate_similarity.py (highest threshold keeping >= 90 % of answer sentences).
    default_threshold = 0.30

    def __init__(self, encode: Encode, cache_size: int = 50_000) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self._encode = encode
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def process(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        threshold: float | None = None,
    ) -> list[PrunedContext]:
        threshold = check_threshold(self.default_threshold if threshold is None else threshold)
        if not question.strip():
            raise ValueError("question must not be empty")
        if not contexts:
            return []
        q = self._encode([question])[0]  # (D,)
        vectors = self._sentence_vectors([s for ctx in contexts for s in ctx])  # (N, D)
        scores = np.clip(vectors @ q, 0.0, 1.0) if len(vectors) else np.zeros(0)
        out: list[PrunedContext] = []
        pos = 0
        for ctx in contexts:
            ctx_scores = scores[pos : pos + len(ctx)].tolist()
            pos += len(ctx)
            out.append(assemble(ctx, ctx_scores, threshold, max(ctx_scores, default=0.0)))
        return out

    def _sentence_vectors(self, sentences: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(s for s in sentences if s not in self._cache))
        fresh = self._encode(missing) if missing else None
        with self._lock:
            found: dict[str, np.ndarray] = {}
            if fresh is not None:
                found.update(zip(missing, fresh, strict=True))
            for s in sentences:
                if s not in found:
                    vec = self._cache.get(s)
                    if vec is None:  # evicted by another thread meanwhile
                        vec = self._encode([s])[0]
                    found[s] = vec
            for s, vec in found.items():
                self._cache[s] = vec
                self._cache.move_to_end(s)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if not sentences:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[s] for s in sentences])
