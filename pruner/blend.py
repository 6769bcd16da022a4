"""Which sentences stay: a learned blend of the pruner's keep probability and the MiniLM cosine.

The token head alone judges sentences by what it learned on its training sources; on text it never
saw it keeps too much or drops the answer (bench.heldout). The bi-encoder the pruner started from
knows another thing: how close a sentence is to the question. ``SentenceBlend`` is a logistic
regression over both, fitted on the tune families only (``python -m bench.blend``; never on the
held-out ones) and stored beside the checkpoint as ``blend.json``. Its output is a probability
that the sentence is evidence, so a keep threshold keeps its meaning (0 keeps everything).

Features of one sentence (all computable from one pruner pass and one sentence embedding):
the keep logit, the question-sentence cosine, the best cosine in its passage, the passage's rank
logit, and the keep logit minus the best keep logit in its passage.

``BlendedPruner`` wraps a pruner with it; the service refines only the passages the context can
reach (``refine``), so sentences nobody will read are never embedded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pruner.answer import ANSWER_COSINE_WEIGHT
from pruner.base import PrunedContext, Pruner, assemble, check_threshold
from pruner.inference import split_sentences

FEATURES = (
    "keep_logit",
    "sentence_cosine",
    "passage_best_cosine",
    "rank_logit",
    "keep_logit_vs_best",
)
BLEND_FILE = "blend.json"
_CLIP = 1e-6
Encode = Callable[[Sequence[str]], np.ndarray]


def _logit(p: float | np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    return np.asarray(np.log(q / (1 - q)))


def features(keep: Sequence[float], cosines: Sequence[float], rank: float) -> np.ndarray:
    """(sentences, len(FEATURES)) for one passage."""
    if len(keep) != len(cosines):
        raise ValueError(f"{len(keep)} keep scores but {len(cosines)} cosines")
    if not keep:
        return np.zeros((0, len(FEATURES)))
    k = _logit(np.asarray(keep, dtype=np.float64))
    c = np.asarray(cosines, dtype=np.float64)
    n = len(k)
    return np.stack(
        [k, c, np.full(n, c.max()), np.full(n, float(_logit(rank))), k - k.max()], axis=1
    )


@dataclass(frozen=True)
class SentenceBlend:
    weights: tuple[float, ...]  # one per FEATURES entry, on the raw features
    bias: float
    threshold: float  # the default keep threshold, chosen by the rule in bench.blend
    answer_cosine_weight: float = ANSWER_COSINE_WEIGHT  # pruner.answer's weight on this blend
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"{len(FEATURES)} weights expected, got {len(self.weights)}")
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise ValueError("blend weights must be finite numbers")
        check_threshold(self.threshold)
        if not 0.0 <= self.answer_cosine_weight <= 1.0:
            raise ValueError(
                f"answer_cosine_weight must be within [0, 1], got {self.answer_cosine_weight}"
            )

    def scores(self, keep: Sequence[float], cosines: Sequence[float], rank: float) -> list[float]:
        """Probability that each sentence of one passage is evidence, in [0, 1]."""
        x = features(keep, cosines, rank)
        z = x @ np.asarray(self.weights) + self.bias
        return [float(v) for v in 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))]

    @classmethod
    def load(cls, path: str | Path) -> SentenceBlend:
        data = json.loads(Path(path).read_text())
        if tuple(data.get("features", ())) != FEATURES:
            raise ValueError(f"{path}: features {data.get('features')} are not {list(FEATURES)}")
        return cls(
            tuple(float(w) for w in data["weights"]),
            float(data["bias"]),
            float(data["threshold"]),
            float(data.get("answer_cosine_weight", ANSWER_COSINE_WEIGHT)),
            dict(data.get("provenance", {})),
        )

    @classmethod
    def beside(cls, checkpoint: str | Path) -> SentenceBlend | None:
        """The blend stored with a checkpoint, or None when it has none."""
        path = Path(checkpoint) / BLEND_FILE
        return cls.load(path) if path.exists() else None

    def save(self, path: str | Path) -> None:
        payload = {
            "features": list(FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "answer_cosine_weight": self.answer_cosine_weight,
            "provenance": self.provenance,
        }
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")


class BlendedPruner:
    """A pruner whose sentence scores are ``SentenceBlend`` probabilities: the inner pruner's
    rank score and keep probabilities, the question-sentence cosine from ``encode`` (the
    service's cached embedder)."""

    def __init__(self, inner: Pruner, encode: Encode, blend: SentenceBlend) -> None:
        self.inner = inner
        self.encode = encode
        self.blend = blend

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def default_threshold(self) -> float:
        return self.blend.threshold

    def raw(self, question: str, contexts: Sequence[Sequence[str]]) -> list[PrunedContext]:
        """The inner pruner's scores, nothing refined (every sentence kept: threshold 0)."""
        return self.inner.process(question, _sentences(contexts), 0.0, always_select_title=False)

    def process(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        threshold: float | None = None,
        always_select_title: bool = False,
    ) -> list[PrunedContext]:
        contexts = _sentences(contexts)
        raw = self.raw(question, contexts)
        return self.refine(
            question, contexts, raw, range(len(contexts)), threshold, always_select_title
        )

    def refine(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        raw: Sequence[PrunedContext],
        positions: Sequence[int],
        threshold: float | None = None,
        always_select_title: bool = False,
    ) -> list[PrunedContext]:
        """``raw`` with the contexts at ``positions`` re-scored by the blend (one embedding
        call for all their sentences) and kept at ``threshold``; the others unchanged."""
        threshold = check_threshold(self.default_threshold if threshold is None else threshold)
        if not question.strip():
            raise ValueError("question must not be empty")
        contexts = _sentences(contexts)
        out = list(raw)
        picked = [i for i in dict.fromkeys(positions) if contexts[i]]
        sentences = [s for i in picked for s in contexts[i]]
        if not sentences:
            return out
        vectors = self.encode([question, *sentences])
        cosines = (vectors[1:] @ vectors[0]).tolist()
        pos = 0
        for i in picked:
            n = len(contexts[i])
            scores = self.blend.scores(
                raw[i].sentence_scores, cosines[pos : pos + n], raw[i].rerank_score
            )
            pos += n
            out[i] = assemble(
                contexts[i], scores, threshold, raw[i].rerank_score, always_select_title
            )
        return out

    def refine_in_order(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        raw: Sequence[PrunedContext],
        order: Sequence[int],
        wanted: int,
        threshold: float | None = None,
    ) -> tuple[list[PrunedContext], int]:
        """Refine contexts best first until ``wanted`` of them keep a sentence (or all are done):
        what the context assembly reads, and nothing after it. Returns the results and how many
        contexts of ``order`` were refined; the others keep nothing (their scores stay the inner
        pruner's), so nothing unrefined can reach the context."""
        out = list(raw)
        done = found = 0
        while done < len(order) and found < wanted:
            step = list(order[done : done + wanted - found + 1])
            out = self.refine(question, contexts, out, step, threshold)
            found += sum(1 for i in step if out[i].kept)
            done += len(step)
        for i in order[done:]:
            out[i] = out[i].nothing_kept()
        return out, done


def _sentences(contexts: Sequence[Sequence[str]] | Sequence[str] | str) -> list[list[str]]:
    """Contexts as sentence lists: a plain-string context is split, and one string alone is
    one context, as ContextPruner takes them."""
    if isinstance(contexts, str):
        contexts = [contexts]
    return [split_sentences(c) if isinstance(c, str) else list(c) for c in contexts]
