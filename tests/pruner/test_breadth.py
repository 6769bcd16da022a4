"""Pruner v3 training data (pruner/sources.py) and trainer (pruner/breadth.py) on fixture files."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerBase

from index import Embedder
from pruner import ContextPruner
from pruner.breadth import (
    BreadthConfig,
    gold_passage_loss,
    group_loss,
    group_rows,
    layered_groups,
    prepare,
    shape,
    train,
    within_passage_loss,
)
from pruner.data import split_of
from pruner.modeling import PrunerModel
from pruner.sources import LOADERS, load_sources
from tests.pruner.test_listwise import tok, write_data  # noqa: F401  (tok is a fixture)
from tests.pruner.tiny import save_tiny_checkpoint


def _page(split: str, start: int = 0) -> str:
    return next(
        f"Page_{i}" for i in range(start, 10_000) if split_of("fever", f"Page_{i}") == split
    )


def write_all(root: Path) -> Path:
    """write_data's four sources plus MultiRC's train part and FEVER, in their real formats."""
    write_data(root)
    (root / "eraser_multirc").mkdir()
    rows = [
        {
            "docid": "story-1.txt",
            "question": "Why did Ann run ?",
            "sentences": ["Ann woke late .", "She ran to catch the bus .", "It rained ."],
            "evidence_sentence_ids": [1],
        },
        {
            "docid": "story-2.txt",
            "question": "What colour was the car ?",
            "sentences": ["The car was red .", "It was fast ."],
            "evidence_sentence_ids": [0],
        },
    ]
    (root / "eraser_multirc" / "multirc_train_part.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    (root / "eraser_fever").mkdir()
    claims = []
    for i, name in enumerate([_page("train"), _page("train", 1000), _page("dev")]):
        claims.append(
            {
                "claim": f"Claim {i} holds.",
                "label": "SUPPORTS",
                "docs": [{"docid": name, "sentences": [f"{name} -LRB- x -RRB- is .", "Fact ."]}],
                "evidence_groups": [[{"docid": name, "sentence_ids": [1]}]],
            }
        )
    (root / "eraser_fever" / "fever_val.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in claims)
    )
    return root


def test_sources_use_training_split_documents_only(tmp_path: Path) -> None:
    sources = {s.name: s for s in load_sources(write_all(tmp_path / "data"))}
    assert set(sources) == set(LOADERS)
    squad = sources["squad"]
    texts = [" ".join(p.sentences) for p in squad.pool]
    assert not any("Never trained on" in t for t in texts)  # the dev-split article
    answered = [q for q in squad.queries if q.gold]
    assert len(answered) == 4
    for q in answered:
        (at, labels), *_ = q.gold
        gold = [s for s, lab in zip(squad.pool[at].sentences, labels, strict=True) if lab]
        assert len(gold) == 1 and gold[0].split()[0] in q.question + gold[0]
    (unanswerable,) = [q for q in squad.queries if not q.gold]
    assert unanswerable.question == "Who?" and len(unanswerable.fixed) == 1
    assert unanswerable.fixed[0] in unanswerable.banned

    fever = sources["fever"]
    assert len(fever.queries) == 2 and len(fever.pool) == 2  # the dev-split page is left out
    page = fever.pool[0].title.replace(" ", "_")
    assert fever.pool[0].sentences == [f"{page} (x) is.", "Fact."]
    assert all(q.gold[0][1] == [0, 1] for q in fever.queries)

    multirc = sources["multirc"]
    assert [q.gold[0][1] for q in multirc.queries] == [[0, 1, 0], [1, 0]]
    assert multirc.pool[0].sentences[1] == "She ran to catch the bus."

    (hotpot,) = sources["hotpotqa"].queries
    assert len(hotpot.gold) == 2 and len(hotpot.fixed) == 1
    assert set(hotpot.fixed) <= hotpot.banned


def test_wikiqa_shared_candidates_are_one_passage_and_dev_copies_stay_out(
    tmp_path: Path,
) -> None:
    def key(split: str, start: int) -> str:
        return next(
            f"how tall is tower {i}"
            for i in range(start, 10_000)
            if split_of("wikiqa", f"how tall is tower {i}") == split
        )

    train_a, train_b, train_c = key("train", 0), key("train", 1), key("train", 2)
    if len({train_a, train_b, train_c}) < 3:  # pragma: no cover - hash luck
        train_b, train_c = key("train", 500), key("train", 900)
    dev = key("dev", 0)
    rows = [
        (train_a, "It is tall .", "1"),
        (train_a, "It has stairs .", "0"),
        (train_b, "It is tall .", "0"),  # the same page's candidates: one pool passage
        (train_b, "It has stairs .", "1"),
        (dev, "Dev page .", "1"),
        (train_c, "Dev page .", "0"),  # a dev question's candidates: not trained on
    ]
    (tmp_path / "wikiqa").mkdir()
    (tmp_path / "wikiqa" / "WikiQA-train.tsv").write_text(
        "".join(f"Q\t{q}\tS\t{s}\t{lab}\n" for q, s, lab in rows)
    )
    source = LOADERS["wikiqa"](tmp_path)
    assert len(source.pool) == 1 and len(source.queries) == 2
    assert {tuple(q.gold[0][1]) for q in source.queries} == {(1, 0), (0, 1)}


def test_fever_evidence_is_every_group_and_held_out_pages_are_not_trained_on(
    tmp_path: Path,
) -> None:
    data = write_all(tmp_path / "data")
    path = data / "eraser_fever" / "fever_val.jsonl"
    claims = [json.loads(line) for line in path.read_text().splitlines()]
    name = claims[0]["docs"][0]["docid"]
    claims[0]["evidence_groups"].append([{"docid": name, "sentence_ids": [0]}])
    path.write_text("".join(json.dumps(c) + "\n" for c in claims))
    fever = {s.name: s for s in load_sources(data)}["fever"]
    assert fever.queries[0].gold[0][1] == [1, 1]
    # a page that is also a paragraph of the held-out MuSiQue sample is left out of training
    (data / "musique_hipporag_train100").mkdir()
    (data / "musique_hipporag_train100" / "musique_train.json").write_text(
        json.dumps([{"paragraphs": [{"title": name.replace("_", " "), "paragraph_text": "x"}]}])
    )
    fever = {s.name: s for s in load_sources(data)}["fever"]
    assert len(fever.queries) == 1
    bad = next(i for i, p in enumerate(fever.pool) if p.title == name.replace("_", " "))
    assert bad in fever.queries[0].banned  # and never drawn as a negative


def test_shapes_add_only_unlabelled_lines_and_keep_the_gold_sentence() -> None:
    sentences, labels = ["First one.", "The answer is here.", "Last."], [0, 1, 0]
    seen = set()
    for seed in range(60):
        rng = random.Random(seed)
        s, lab = shape("A title", sentences, labels, rng)
        assert len(s) == len(lab) and sum(lab) == 1
        assert "The answer is here." in s[lab.index(1)]
        added = [x for x, y in zip(s, lab, strict=True) if not y and x not in sentences]
        seen.add(len(s) - len(sentences))
        if len(s) > len(sentences):  # a heading or a noise line: labelled 0
            assert len(added) >= 1
    assert seen == {0, 1}


def test_group_loss_terms() -> None:
    cfg = BreadthConfig(list_weight=1.0, distill_weight=0.0, bce_weight=0.0)
    logits = torch.tensor([2.0, 0.0, -1.0])
    labels = torch.tensor([0.0, 1.0, 0.0])
    teacher = torch.tensor([0.5, 0.4, 0.1])
    loss, listwise, _ = group_loss(logits, labels, teacher, cfg)
    assert math.isclose(listwise, -torch.log_softmax(logits, 0)[1].item(), rel_tol=1e-5)
    assert math.isclose(loss.item(), listwise, rel_tol=1e-5)
    # the distillation term is zero when the rank logits give the teacher's distribution
    cfg = BreadthConfig(list_weight=0.0, distill_weight=1.0, bce_weight=0.0)
    matched = teacher / cfg.distill_temperature
    _, _, kl = group_loss(matched, labels, teacher, cfg)
    assert abs(kl) < 1e-5
    _, _, kl_off = group_loss(-matched, labels, teacher, cfg)
    assert kl_off > 1.0
    # a group without gold (an unanswerable question) has no listwise term
    loss, listwise, _ = group_loss(logits, torch.zeros(3), teacher, cfg)
    assert listwise == 0.0 and torch.isfinite(loss)


def test_within_passage_loss_asks_the_gold_tokens_to_beat_their_own_passage() -> None:
    labels = torch.tensor([[-100, 0, 0, 1, 1, -100], [-100, 0, 0, 0, -100, -100]])
    sharp = torch.tensor([[0.0, -5.0, -5.0, 5.0, 5.0, 0.0], [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]])
    flat = torch.zeros(2, 6)
    # only the first row has gold tokens; its loss is −log of their softmax mass
    assert math.isclose(within_passage_loss(flat, labels).item(), math.log(2.0), rel_tol=1e-5)
    assert within_passage_loss(sharp, labels).item() < 1e-3
    assert within_passage_loss(flat, torch.zeros_like(labels) - 100).item() == 0.0


def test_gold_passage_loss_reads_only_passages_with_gold() -> None:
    labels = torch.tensor([[-100, 0, 0, 1, 1, -100], [-100, 0, 0, 0, -100, -100]])
    right = torch.tensor([[0.0, -9.0, -9.0, 9.0, 9.0, 0.0], [0.0, 9.0, 9.0, 9.0, 0.0, 0.0]])
    # the second row (no gold) is ignored even though it scores its tokens high
    assert gold_passage_loss(right, labels).item() < 1e-3
    flat = torch.zeros(2, 6)
    assert math.isclose(gold_passage_loss(flat, labels).item(), math.log(2.0), rel_tol=1e-5)
    assert gold_passage_loss(flat, torch.zeros_like(labels)).item() == 0.0


def test_layer_decay_changes_lower_layers_least(tmp_path: Path) -> None:
    model = PrunerModel.from_pretrained(save_tiny_checkpoint(tmp_path / "tiny", layers=3))
    cfg = BreadthConfig(lr=1e-4, layer_decay=0.5, head_lr=1e-3)
    lrs: dict[int, float] = {
        id(p): float(g["lr"])  # type: ignore[arg-type]
        for g in layered_groups(model, cfg)
        for p in g["params"]  # type: ignore[attr-defined]
    }
    named = dict(model.named_parameters())

    def lr(name: str) -> float:
        return float(lrs[id(named[name])])

    assert lr("rank_head.weight") == 1e-3
    assert lr("encoder.encoder.layer.2.output.dense.weight") == 1e-4
    assert lr("encoder.encoder.layer.0.output.dense.weight") == 1e-4 * 0.25
    assert lr("encoder.embeddings.word_embeddings.weight") == 1e-4 * 0.125
    assert len(lrs) == len(named)  # every parameter in exactly one group


def test_groups_hold_gold_and_retrieved_negatives(
    tmp_path: Path,
    embedder: Embedder,
    tok: PreTrainedTokenizerBase,  # noqa: F811
) -> None:
    sources = load_sources(write_all(tmp_path / "data"), ["squad"])
    (prepared,) = prepare(sources, 3, embedder.encode)
    item = next(p for p in prepared if p.query.gold)
    gold_at = item.query.gold[0][0]
    assert gold_at not in item.negatives and item.negatives
    cfg = BreadthConfig(group_size=3, max_seq_length=64, shape_prob=0.0)
    rows, teacher = group_rows(item, sources[0].pool, cfg, tok, random.Random(0))
    assert len(rows) == 3 and sum(r[2] for r in rows) == 1
    assert len(teacher) == 3 and max(teacher) <= 1.0


def test_a_tiny_run_writes_a_checkpoint_and_resumes(tmp_path: Path, embedder: Embedder) -> None:
    data = write_all(tmp_path / "data")
    cfg = BreadthConfig(
        data=str(data),
        init=str(save_tiny_checkpoint(tmp_path / "init")),
        out=str(tmp_path / "runs" / "v3"),
        max_seq_length=48,
        group_size=3,
        minutes=0.02,
        log_every=1,
        warmup_steps=1,
        bf16="off",
        sentence_weight=1.0,
        gold_token_weight=1.0,
    )
    out = train(cfg, encode_texts=embedder.encode)
    meta = json.loads((out / "training.json").read_text())
    assert meta["steps"] >= 1 and all(math.isfinite(e["loss"]) for e in meta["log"])
    assert (out / "resume.pt").is_file()
    [pruned] = ContextPruner(out).load().process("What has rings?", ["Saturn has rings. Far."])
    assert 0.0 <= pruned.rerank_score <= 1.0
    cfg.minutes, cfg.resume = 0.04, True
    again = json.loads((train(cfg, encode_texts=embedder.encode) / "training.json").read_text())
    assert again["steps"] > meta["steps"]
    cfg.lr *= 2  # another optimiser set-up cannot continue this state
    with pytest.raises(SystemExit, match="other settings"):
        train(cfg, encode_texts=embedder.encode)


def test_missing_data_exits_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="training data not found"):
        train(BreadthConfig(data=str(tmp_path / "absent")))
