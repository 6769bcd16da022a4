"""Listwise fine-tuning: groups, hard negatives, loss, and a whole tiny run on fixture files."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from index import Embedder, bundled_model_path
from pruner import ContextPruner
from pruner.data import split_of
from pruner.listwise import (
    Group,
    ListwiseConfig,
    fit_gold,
    hotpot_groups,
    sample_group,
    squad_groups,
    step_loss,
    train,
)
from pruner.modeling import PrunerOutput
from pruner.train import encode
from tests.pruner.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True)


def _title(split: str, start: int = 0) -> str:
    """An article title that pruner/data.py puts in ``split``."""
    return next(
        f"Article {i}"
        for i in range(start, 10_000)
        if split_of("squad_v1", f"Article {i}") == split
    )


TOPICS = [
    ("Saturn", "Saturn is the sixth planet.", "It has rings of ice.", "What has rings of ice?"),
    ("Nile", "The Nile flows north.", "It ends in the Mediterranean.", "Where does the Nile end?"),
    ("Basalt", "Basalt is a volcanic rock.", "It cools quickly from lava.", "What cools quickly?"),
    (
        "Violin",
        "A violin has four strings.",
        "It is played with a bow.",
        "What is played with a bow?",
    ),
]


def write_data(root: Path) -> Path:
    """The five source files pruner/data.py reads, a few records each, in their real formats."""
    train_title, dev_title = _title("train"), _title("dev")
    paragraphs = []
    for name, first, second, question in TOPICS:
        context = f"{first} {second}"
        answer = second.split()[0]
        qa = {
            "id": name,
            "question": question,
            "answers": [{"text": answer, "answer_start": context.index(second)}],
        }
        paragraphs.append({"context": context, "qas": [qa]})
    dev_para = {
        "context": "Dev text only. Never trained on.",
        "qas": [
            {
                "id": "dev",
                "question": "What is never trained on?",
                "answers": [{"text": "Never", "answer_start": 15}],
            }
        ],
    }
    squad = {
        "data": [
            {"title": train_title, "paragraphs": paragraphs},
            {"title": dev_title, "paragraphs": [dev_para]},
        ]
    }
    (root / "squad_v1.1").mkdir(parents=True)
    (root / "squad_v1.1" / "dev-v1.1.json").write_text(json.dumps(squad))
    v2 = root / "squad_v2.0_cs224n_dev_half"
    v2.mkdir()
    unanswerable = {"id": "u", "question": "Who?", "answers": [], "is_impossible": True}
    (v2 / "dev-v2.0-cs224n-half.json").write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": train_title,
                        "paragraphs": [{"context": "A b.", "qas": [unanswerable]}],
                    }
                ]
            }
        )
    )
    (root / "wikiqa").mkdir()
    with (root / "wikiqa" / "WikiQA-train.tsv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(
            [
                "QuestionID",
                "Question",
                "DocumentID",
                "DocumentTitle",
                "SentenceID",
                "Sentence",
                "Label",
            ]
        )
        w.writerow(["Q1", "how tall is it", "D1", "T", "D1-0", "It is tall .", "1"])
        w.writerow(["Q1", "how tall is it", "D1", "T", "D1-1", "Other words .", "0"])
    (root / "scifact").mkdir()
    (root / "scifact" / "corpus.jsonl").write_text(
        json.dumps({"doc_id": 1, "title": "t", "abstract": ["Cells divide.", "Mice were used."]})
        + "\n"
    )
    claim = {
        "id": 1,
        "claim": "Cells divide.",
        "evidence": {"1": [{"sentences": [0]}]},
        "cited_doc_ids": [1],
    }
    (root / "scifact" / "claims_train.jsonl").write_text(json.dumps(claim) + "\n")
    (root / "hotpotqa_hipporag_train100").mkdir()
    hotpot_id = next(f"h{i}" for i in range(1000) if split_of("hotpotqa", f"h{i}") == "train")
    hotpot = [
        {
            "_id": hotpot_id,
            "question": "Which river is near the city with the red bridge?",
            "supporting_facts": [["Bridge", 0], ["River", 1]],
            "context": [
                ["Bridge", ["The red bridge is in Orlen.", "It is old."]],
                ["River", ["Rivers flow.", "The Vass runs past Orlen."]],
                ["Other", ["Unrelated words.", " "]],
            ],
        }
    ]
    (root / "hotpotqa_hipporag_train100" / "hotpotqa_train.json").write_text(json.dumps(hotpot))
    return root


class FixedLogits(nn.Module):
    """Stands in for the model: returns the rank logits it was given."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> PrunerOutput:
        return PrunerOutput(rank_logits=self.logits, token_logits=torch.zeros(input_ids.shape))


def _batch(rank: list[int]) -> dict[str, torch.Tensor]:
    n = len(rank)
    labels = torch.full((n, 4), -100)
    labels[:, 1:3] = 0
    return {
        "input_ids": torch.zeros((n, 4), dtype=torch.long),
        "attention_mask": torch.ones((n, 4), dtype=torch.long),
        "labels": labels,
        "rank": torch.tensor(rank, dtype=torch.float),
    }


def test_listwise_loss_is_the_cross_entropy_of_the_gold_passages() -> None:
    cfg = ListwiseConfig()
    logits = [2.0, 0.5, -1.0, 3.0]  # rows 0-2: the group (gold: row 1); row 3: pointwise
    _, listwise = step_loss(FixedLogits(logits), _batch([0, 1, 0, 1]), 3, cfg)  # type: ignore[arg-type]
    group = logits[:3]
    expected = -math.log(math.exp(0.5) / sum(math.exp(x) for x in group))
    assert listwise == pytest.approx(expected, rel=1e-5)
    # two gold passages (HotpotQA): −log of their summed probability
    _, both = step_loss(FixedLogits(logits), _batch([1, 1, 0, 1]), 3, cfg)  # type: ignore[arg-type]
    expected = -math.log((math.exp(2.0) + math.exp(0.5)) / sum(math.exp(x) for x in group))
    assert both == pytest.approx(expected, rel=1e-5)
    # ranking the gold passage higher lowers the loss
    _, better = step_loss(FixedLogits([-1.0, 4.0, -1.0, 3.0]), _batch([0, 1, 0, 1]), 3, cfg)  # type: ignore[arg-type]
    assert better < listwise


def test_a_sampled_group_holds_the_gold_passage_once_and_distinct_negatives() -> None:
    paragraphs = [[f"Paragraph {i}."] for i in range(30)]
    gold = (["Gold sentence.", "Other."], [1, 0])
    g = Group("q?", [gold], negatives=list(range(1, 30)))
    rng = random.Random(0)
    for _ in range(20):
        passages = sample_group(g, paragraphs, 8, rng)
        assert len(passages) == 8
        assert passages.count(gold) == 1
        negatives = [p for p in passages if p != gold]
        assert len({tuple(s) for s, _ in negatives}) == 7
        assert all(labels == [0] for _, labels in negatives)
    fixed = Group("q?", [gold, (["x."], [0])], negatives=[])
    assert sample_group(fixed, paragraphs, 8, rng) == fixed.passages


def test_fit_gold_drops_leading_sentences_until_the_gold_sentence_fits(
    tok: PreTrainedTokenizerBase,
) -> None:
    from pruner.data import Example

    sentences = [f"Filler sentence number {i} with several words in it." for i in range(40)]
    sentences.append("The answer is forty-two.")
    labels = [0] * 40 + [1]
    fitted, fitted_labels = fit_gold(sentences, labels, tok, "What is the answer?", 64)
    assert fitted[-1] == "The answer is forty-two." and fitted_labels[-1] == 1
    assert 1 in encode(Example("What is the answer?", fitted, fitted_labels, "", ""), tok, 64)[1]
    short = (["Short gold.", "Tail."], [1, 0])
    assert fit_gold(*short, tok, "q?", 64) == short
    negative = (sentences[:3], [0, 0, 0])
    assert fit_gold(*negative, tok, "q?", 64) == negative


def test_squad_groups_mine_training_split_negatives_only(
    tmp_path: Path, embedder: Embedder
) -> None:
    data = write_data(tmp_path / "data")
    groups, paragraphs = squad_groups(data, pool=2, encode_texts=embedder.encode)
    assert len(groups) == len(TOPICS) == len(paragraphs)  # the dev article is left out
    assert not any("Dev text" in " ".join(p) for p in paragraphs)
    for i, g in enumerate(groups):
        (sentences, labels) = g.passages[0]
        assert sentences == paragraphs[i] and labels == [0, 1]
        assert i not in g.negatives and g.negatives
        assert all(0 <= j < len(paragraphs) for j in g.negatives)


def test_hotpot_groups_mark_both_supporting_paragraphs(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    (g,) = hotpot_groups(data)
    relevant = [any(labels) for _, labels in g.passages]
    assert relevant == [True, True, False]
    assert g.passages[2] == (["Unrelated words."], [0])


def test_a_tiny_run_writes_a_checkpoint_the_pruner_loads(
    tmp_path: Path, embedder: Embedder
) -> None:
    data = write_data(tmp_path / "data")
    init = save_tiny_checkpoint(tmp_path / "init")
    cfg = ListwiseConfig(
        data=str(data),
        init=str(init),
        out=str(tmp_path / "out"),
        max_seq_length=48,
        group_size=3,
        point_batch=2,
        minutes=0.02,
        log_every=1,
        warmup_steps=1,
    )
    out = train(cfg, encode_texts=embedder.encode)
    meta = json.loads((out / "training.json").read_text())
    assert meta["steps"] >= 1 and meta["log"]
    assert all(math.isfinite(e["loss"]) for e in meta["log"])
    assert (out / "split.json").is_file()
    [pruned] = (
        ContextPruner(out).load().process("What has rings?", ["Saturn has rings. It is far."])
    )
    assert 0.0 <= pruned.rerank_score <= 1.0


def test_missing_data_exits_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="training data not found"):
        train(ListwiseConfig(data=str(tmp_path / "absent")))
