"""The sentence blend: features, the stored model, and the pruner that refines only what is read."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from index import Embedder
from pruner import BlendedPruner, ContextPruner, Pruner, SentenceBlend
from pruner.blend import BLEND_FILE, FEATURES, features
from pruner.inference import CHECKPOINT
from tests.pruner.tiny import save_tiny_checkpoint

# cosine matters most, as in every fitted blend so far
BLEND = SentenceBlend((0.5, 4.0, 0.5, 0.0, 0.0), -3.0, 0.1, 0.5)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-pruner"))


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.embedder.encode(texts)


def test_features_of_one_passage() -> None:
    x = features([0.5, 0.9], [0.2, 0.6], 0.5)
    assert x.shape == (2, len(FEATURES))
    assert x[0, 0] == pytest.approx(0.0)  # logit(0.5)
    assert x[1, 0] == pytest.approx(math.log(9))
    assert list(x[:, 1]) == pytest.approx([0.2, 0.6])
    assert list(x[:, 2]) == pytest.approx([0.6, 0.6])  # best cosine in the passage
    assert list(x[:, 3]) == pytest.approx([0.0, 0.0])  # logit of the rank score 0.5
    assert list(x[:, 4]) == pytest.approx([-math.log(9), 0.0])
    assert features([], [], 0.3).shape == (0, len(FEATURES))
    assert np.isfinite(features([0.0, 1.0], [0.1, 0.1], 1.0)).all()  # logits are clipped
    with pytest.raises(ValueError, match="cosines"):
        features([0.5], [0.1, 0.2], 0.5)


def test_scores_are_probabilities_that_rise_with_the_cosine() -> None:
    low, high = BLEND.scores([0.5, 0.5], [0.1, 0.7], 0.5)
    assert 0.0 < low < high < 1.0


@pytest.mark.parametrize(
    ("weights", "bias", "threshold", "message"),
    [
        ((1.0, 2.0), 0.0, 0.1, "weights expected"),
        ((1.0, 2.0, 0.0, 0.0, float("nan")), 0.0, 0.1, "finite"),
        ((1.0, 2.0, 0.0, 0.0, 0.0), 0.0, 1.5, "threshold"),
    ],
)
def test_bad_blends_are_refused(
    weights: tuple[float, ...], bias: float, threshold: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SentenceBlend(weights, bias, threshold)


def test_saved_blend_loads_back_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    BLEND.save(tmp_path / BLEND_FILE)
    assert SentenceBlend.beside(tmp_path) == BLEND
    assert SentenceBlend.beside(tmp_path / "elsewhere") is None
    data = json.loads((tmp_path / BLEND_FILE).read_text())
    data["features"] = ["keep_logit"]
    (tmp_path / BLEND_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="features"):
        SentenceBlend.beside(tmp_path)


def test_the_shipped_blend_loads_and_keeps_its_rule_threshold() -> None:
    blend = SentenceBlend.beside(CHECKPOINT)
    assert blend is not None, "pruner/checkpoint/blend.json is shipped (python -m bench.blend)"
    assert 0.0 < blend.threshold < 0.5
    assert blend.weights[FEATURES.index("sentence_cosine")] > 0  # the bi-encoder's knowledge


def test_blended_pruner_keeps_by_the_blend(tiny_checkpoint: Path, embedder: Embedder) -> None:
    pruner = BlendedPruner(ContextPruner(tiny_checkpoint, device="cpu"), embedder.encode, BLEND)
    assert isinstance(pruner, Pruner) and pruner.default_threshold == BLEND.threshold
    contexts = [
        ["The warranty lasts two years.", "Shipping is free in the EU."],
        ["Cats sleep a lot."],
        [],
    ]
    question = "How long is the warranty?"
    out = pruner.process(question, contexts)
    raw = pruner.raw(question, contexts)
    vectors = embedder.encode([question, *contexts[0]])
    expected = BLEND.scores(
        raw[0].sentence_scores, list(vectors[1:] @ vectors[0]), raw[0].rerank_score
    )
    assert out[0].sentence_scores == pytest.approx(expected, abs=1e-5)
    assert out[0].sentence_scores[0] > out[0].sentence_scores[1]
    assert out[2].kept == [] and out[2].sentence_scores == []
    assert all(
        o.kept == [i for i, _ in enumerate(o.sentence_scores)]
        for o in pruner.process(question, contexts, 0.0)
    )
    assert all(o.kept == [] for o in pruner.process(question, contexts, 1.0))


def test_refine_in_order_embeds_only_what_the_context_reads(
    tiny_checkpoint: Path, embedder: Embedder
) -> None:
    encode = Counting(embedder)
    pruner = BlendedPruner(ContextPruner(tiny_checkpoint, device="cpu"), encode, BLEND)
    question = "Which river runs through the city?"
    contexts = [[f"The river number {i} runs through city {i}.", f"Filler {i}."] for i in range(8)]
    raw = pruner.raw(question, contexts)
    order = [3, 1, 4, 0, 5, 2, 7, 6]
    out, done = pruner.refine_in_order(question, contexts, raw, order, wanted=2, threshold=0.0)
    # threshold 0: every refined passage keeps something, so 2 wanted + 1 spare are refined
    assert done == 3
    assert [i for i in range(8) if out[i].kept] == sorted(order[:3])
    assert all(out[i].kept == [] and out[i].pruned_text == "" for i in order[3:])
    embedded = set(encode.texts) - {question}
    assert embedded == {s for i in order[:3] for s in contexts[i]}
    # nothing kept at threshold 1: it walks the whole order and keeps nothing
    out, done = pruner.refine_in_order(question, contexts, raw, order, wanted=2, threshold=1.0)
    assert done == 8 and all(o.kept == [] for o in out)
