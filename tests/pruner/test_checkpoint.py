"""The checkpoint shipped in pruner/checkpoint: loads with no arguments, prunes sensibly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from pruner import ContextPruner
from pruner.inference import CHECKPOINT

RAINFOREST = [
    "The Amazon rainforest is a moist broadleaf forest in the Amazon basin of South America.",
    "The basin covers about seven million square kilometres.",
    "Most of the forest lies within Brazil, with about sixty percent of the rainforest.",
    "Peru holds thirteen percent and Colombia ten percent.",
    "The region is home to around 390 billion individual trees.",
]
PASTA = [
    "Bring a large pot of salted water to the boil.",
    "Add the spaghetti and stir so it does not stick.",
    "Cook the spaghetti for about nine minutes, then drain it.",
    "Toss it with the sauce and serve it hot.",
]


@pytest.fixture(scope="module")
def shipped() -> ContextPruner:
    return ContextPruner(device="cpu").load()


def test_loads_with_no_arguments_from_fp16_safetensors(shipped: ContextPruner) -> None:
    assert shipped.path == CHECKPOINT
    assert (CHECKPOINT / "model.safetensors").exists() and (CHECKPOINT / "README.md").exists()
    with safe_open(str(CHECKPOINT / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}  # noqa: SIM118
    split = json.loads((CHECKPOINT / "split.json").read_text())
    assert split["squad_v1"]["dev_documents"]  # the dev articles are recorded


def test_keeps_the_answer_sentence_and_drops_the_rest(shipped: ContextPruner) -> None:
    [out] = shipped.process(
        "How many trees grow in the Amazon region?", [RAINFOREST], always_select_title=False
    )
    assert 4 in out.kept and 0 not in out.kept and out.compression > 0.5
    [out] = shipped.process(
        "How much of the Amazon rainforest is in Brazil?", [RAINFOREST], always_select_title=False
    )
    # v2 keeps the answer sentence here but scores the topic sentence (0) higher (v1 did not;
    # noted in the model card); the aggregate figures are in bench/results/pruner_*.json
    assert 2 in out.kept and out.sentence_scores[2] > out.sentence_scores[4]


def test_keeps_nothing_of_irrelevant_passages(shipped: ContextPruner) -> None:
    for out in shipped.process("Who wrote the novel Dracula?", [PASTA, RAINFOREST]):
        assert out.kept == [] and out.pruned_text == "" and out.compression == 1.0
        assert out.rerank_score < 0.1


def test_reranks_the_relevant_passage_first(shipped: ContextPruner) -> None:
    q = "How long should spaghetti cook?"
    relevant, irrelevant = shipped.process(q, [PASTA, RAINFOREST])
    assert relevant.rerank_score > 0.5 > irrelevant.rerank_score
    assert 2 in relevant.kept and irrelevant.kept == []
    [best] = shipped.process(q, [RAINFOREST, PASTA], reorder=True, top_k=1)
    assert "nine minutes" in best.pruned_text
