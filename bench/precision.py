"""Precision per device: speed of fp32 / bf16 / int8 and their agreement with fp32.

    python -m bench.precision                       # shipped pruner, 40 cases per family, ~10 min
    python -m bench.precision --checkpoint runs/pruner-v3 --limit 20

Pruner: p50 latency of ``process()`` (prune + rerank in one pass) over 20 passages, per precision
and batch size; on every family of bench/families.py (tune and held-out alike: nothing is chosen
here) the rank-head MRR, answer kept / evidence recall / tokens removed at the checkpoint's
default threshold, and agreement with fp32 (same keep decision per sentence, same top passage).
Embedder: passages/s and the cosine of each vector with its fp32 twin, plus top-5 retrieval
overlap. Writes bench/results/precision.json and precision.png.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import RESULTS, data_dir, machine, percentiles, write_json
from bench.families import FAMILIES, ROLE, Case, load
from bench.heldout import prune_report
from index import Embedder
from pruner import ContextPruner, PrunedContext
from pruner.inference import CHECKPOINT

PRECISIONS = ("fp32", "bf16", "int8")
BATCH_SIZES = (8, 32)
PASSAGES = 20
REPEATS = 12


def twenty_passages(cases: Sequence[Case]) -> tuple[str, list[list[str]]]:
    """A question and 20 realistic passages (candidates of several cases pooled)."""
    pool = [c.sentences for case in cases for c in case.candidates]
    return cases[0].question, pool[:PASSAGES]


def latency(pruner: ContextPruner, question: str, passages: list[list[str]], size: int) -> float:
    pruner.process(question, passages, 0.0, batch_size=size)  # warm-up
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        pruner.process(question, passages, 0.0, batch_size=size)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)["p50"]


def run_family(pruner: ContextPruner, cases: Sequence[Case]) -> list[list[PrunedContext]]:
    return [
        pruner.process(c.question, [x.sentences for x in c.candidates], 0.0, False) for c in cases
    ]


@dataclass(frozen=True)
class _Kept:
    """What prune_report reads of a case: the case, keep scores and token counts."""

    case: Case
    keep: list[list[float]]
    tokens: list[list[int]]


def _kept(case: Case, pruned: list[PrunedContext], embedder: Embedder) -> _Kept:
    counts = embedder.count_tokens([s for c in case.candidates for s in c.sentences])
    tokens, pos = [], 0
    for c in case.candidates:
        tokens.append(counts[pos : pos + len(c.sentences)])
        pos += len(c.sentences)
    return _Kept(case, [p.sentence_scores for p in pruned], tokens)


def quality(
    cases: Sequence[Case], out: list[list[PrunedContext]], threshold: float, embedder: Embedder
) -> dict[str, Any]:
    total = 0.0
    for case, pruned in zip(cases, out, strict=True):
        order = sorted(range(len(pruned)), key=lambda i: -pruned[i].rerank_score)
        best = min(r for r, i in enumerate(order) if case.candidates[i].relevant)
        total += 1.0 / (best + 1)

    xs = [_kept(case, pruned, embedder) for case, pruned in zip(cases, out, strict=True)]
    report = prune_report(xs, lambda x: [[v >= threshold for v in row] for row in x.keep])  # type: ignore[arg-type]
    return {"rank_mrr": round(total / len(cases), 4), **report}


def agreement(
    base: list[list[PrunedContext]], other: list[list[PrunedContext]], threshold: float
) -> dict[str, float]:
    same = total = top = 0
    worst = 0.0
    for a_case, b_case in zip(base, other, strict=True):
        for a, b in zip(a_case, b_case, strict=True):
            for x, y in zip(a.sentence_scores, b.sentence_scores, strict=True):
                same += (x >= threshold) == (y >= threshold)
                total += 1
                worst = max(worst, abs(x - y))
        a_top = max(range(len(a_case)), key=lambda i: a_case[i].rerank_score)
        b_top = max(range(len(b_case)), key=lambda i: b_case[i].rerank_score)
        top += a_top == b_top
    return {
        "keep_decisions_same": round(same / max(total, 1), 4),
        "top_passage_same": round(top / max(len(base), 1), 4),
        "max_score_difference": round(worst, 4),
    }


def embedder_report(texts: list[str], questions: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base_docs = base_q = None
    for precision in PRECISIONS:
        emb = Embedder(device="cpu", precision=precision).load()
        emb.encode(texts[:32])  # warm-up
        started = time.perf_counter()
        docs = emb.encode(texts)
        took = time.perf_counter() - started
        q = emb.encode(questions)
        row: dict[str, Any] = {"passages_per_s": round(len(texts) / took, 1)}
        if base_docs is None:
            base_docs, base_q = docs, q
        else:
            assert base_q is not None
            cos = (docs * base_docs).sum(axis=1)
            top_a = np.argsort(-(base_q @ base_docs.T), axis=1)[:, :5]
            top_b = np.argsort(-(q @ docs.T), axis=1)[:, :5]
            overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top_a, top_b, strict=True)])
            row |= {
                "cosine_to_fp32_mean": round(float(cos.mean()), 5),
                "cosine_to_fp32_min": round(float(cos.min()), 5),
                "top5_overlap_with_fp32": round(float(overlap), 4),
            }
        out[precision] = row
        logging.info("embedder %s: %s", precision, row)
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    speed = result["pruner"]["latency_ms_20_passages"]
    labels = [f"{p}\nbatch {b}" for p in PRECISIONS for b in BATCH_SIZES]
    values = [speed[p][str(b)] for p in PRECISIONS for b in BATCH_SIZES]
    left.bar(labels, values, color=["#888", "#888", "#2a7", "#2a7", "#c63", "#c63"])
    left.set_ylabel("ms, p50")
    left.set_title("prune + rerank, 20 passages (2 CPU cores)")
    fams = list(result["pruner"]["families"])
    for i, precision in enumerate(PRECISIONS):
        mrr = [result["pruner"]["families"][f][precision]["rank_mrr"] for f in fams]
        right.bar(np.arange(len(fams)) + 0.27 * (i - 1), mrr, 0.27, label=precision)
    right.set_xticks(range(len(fams)), fams, rotation=45, ha="right")
    right.set_ylim(0.4, 1.0)
    right.set_ylabel("rank-head MRR")
    right.legend()
    right.set_title("quality per family (held-out and tune)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    ap.add_argument("--limit", type=int, default=40, help="cases per family")
    args = ap.parse_args(argv)
    data = data_dir()
    torch.manual_seed(0)
    cases = {f: load(f, data, args.limit) for f in FAMILIES}
    measurer = Embedder(device="cpu").load()
    question, passages = twenty_passages(cases["squad"])
    speed: dict[str, dict[str, float]] = {}
    outputs: dict[str, dict[str, list[list[PrunedContext]]]] = {}
    threshold = 0.0
    for precision in PRECISIONS:
        pruner = ContextPruner(args.checkpoint, device="cpu", precision=precision, cache_size=0)
        threshold = pruner.default_threshold
        speed[precision] = {str(b): latency(pruner, question, passages, b) for b in BATCH_SIZES}
        logging.info("pruner %s: %s ms", precision, speed[precision])
        outputs[precision] = {f: run_family(pruner, cases[f]) for f in FAMILIES}
    families: dict[str, dict[str, Any]] = {}
    for f in FAMILIES:
        row: dict[str, Any] = {"role": ROLE[f], "cases": len(cases[f])}
        for precision in PRECISIONS:
            row[precision] = quality(cases[f], outputs[precision][f], threshold, measurer)
            if precision != "fp32":
                row[precision] |= agreement(outputs["fp32"][f], outputs[precision][f], threshold)
        families[f] = row
        logging.info("%s: %s", f, row)
    texts = [" ".join(c.sentences) for f in FAMILIES for case in cases[f] for c in case.candidates]
    result = {
        "machine": machine(),
        "cpu_threads": torch.get_num_threads(),
        "checkpoint": str(args.checkpoint),
        "threshold": threshold,
        "pruner": {"latency_ms_20_passages": speed, "families": families},
        "embedder": embedder_report(texts[:1024], [c.question for f in FAMILIES for c in cases[f]]),
        "command": "python -m bench.precision " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    path = write_json("precision", result)
    plot(result, RESULTS / "precision.png")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
