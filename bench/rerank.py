"""Reranking MiniLM's top 20 SQuAD paragraphs: each order the service can use, on questions
disjoint from the ones its one free parameter was chosen on.

    python -m bench.rerank [--tune-questions 500] [--checkpoint DIR]

Corpus: all 2,067 SQuAD v1.1 dev paragraphs; questions: those of the pruner's dev-split
articles (never trained on), 1,478. A random ``--tune-questions`` of them choose the cosine
weight of ``blend`` (grid below, best MRR@10); every figure reported as "held out" comes from
the other questions. Orders compared (gold paragraph's MRR@10, recall@1, recall@3):

- bi-encoder: MiniLM's own order (the vector search);
- bm25: BM25 over the same 20 paragraphs;
- rank head: the trained pruner's passage score alone (``SIEVE_RERANK=pruner``);
- fused: RRF of the bi-encoder order and the rank head (``SIEVE_RERANK=fused``);
- blend: the pruner's best sentence score + w × the bi-encoder cosine (``SIEVE_RERANK=blend``).

Writes bench/results/rerank.json (+ .png); ~20 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.fusion import blend_scores, rerank_order
from bench.common import RESULTS, machine, write_json
from bench.pruner_squad import load, mrr_recall
from index import Embedder
from pruner import ContextPruner, PrunedContext

GRID = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)

Order = Callable[[int], list[int]]  # question index → candidate positions, best first


def evaluate(
    orders: dict[str, Order], questions: list[int], top20: list[list[int]], gold: list[int]
) -> dict[str, dict[str, float]]:
    out = {}
    for name, order in orders.items():
        ranked = [[top20[q][i] for i in order(q)] for q in questions]
        out[name] = mrr_recall(ranked, [gold[q] for q in questions])
    return out


def main() -> None:
    import bm25s

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--tune-questions", type=int, default=500)
    parser.add_argument("--questions", type=int, default=0, help="first N questions (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    paragraphs, questions = load()
    questions = questions[: args.questions] if args.questions else questions
    embedder = Embedder().load()
    texts = [" ".join(p) for p in paragraphs]
    doc_vectors = embedder.encode(texts)
    q_vectors = embedder.encode([q.text for q in questions])
    sims = q_vectors @ doc_vectors.T
    top20 = np.argsort(-sims, axis=1)[:, :20].tolist()
    gold = [q.gold for q in questions]
    cosines = [[float(sims[qi, p]) for p in top] for qi, top in enumerate(top20)]

    pruner = ContextPruner(args.checkpoint).load()
    started = time.perf_counter()
    pruned: list[list[PrunedContext]] = []
    for i, (q, top) in enumerate(zip(questions, top20, strict=True)):
        pruned.append(
            pruner.process(q.text, [paragraphs[p] for p in top], always_select_title=False)
        )
        if (i + 1) % 100 == 0:
            print(f"scored {i + 1}/{len(questions)} questions", flush=True)
    scoring_s = time.perf_counter() - started

    tokenized = bm25s.tokenize(texts, show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokenized, show_progress=False)
    q_tokens = bm25s.tokenize([q.text for q in questions], return_ids=False, show_progress=False)
    empty = np.zeros(len(paragraphs), dtype=np.float32)
    bm25_scores = [bm25.get_scores(t) if t else empty for t in q_tokens]

    def blend(weight: float) -> Order:
        def order(q: int) -> list[int]:
            scores = blend_scores(pruned[q], cosines[q], weight)
            return sorted(range(len(scores)), key=lambda i: -scores[i])

        return order

    orders: dict[str, Order] = {
        "bi-encoder (MiniLM order)": lambda q: list(range(20)),
        "bm25 over the same 20": lambda q: sorted(
            range(20), key=lambda i: -bm25_scores[q][top20[q][i]]
        ),
        "rank head (SIEVE_RERANK=pruner)": lambda q: rerank_order(pruned[q], "pruner"),
        "fused: RRF(bi-encoder, rank head)": lambda q: rerank_order(pruned[q], "fused"),
    }
    everyone = list(range(len(questions)))
    tune = sorted(
        random.Random(args.seed).sample(everyone, min(args.tune_questions, len(everyone)))
    )
    held_out = sorted(set(everyone) - set(tune))
    grid = {w: evaluate({"b": blend(w)}, tune, top20, gold)["b"] for w in GRID}
    best = max(GRID, key=lambda w: grid[w]["mrr@10"])
    orders[f"blend: best sentence + {best} x cosine"] = blend(best)
    result: dict[str, Any] = {
        "dataset": "SQuAD v1.1 dev: 2,067 paragraphs; questions of the pruner dev-split articles",
        "checkpoint": str(pruner.path),
        "questions": len(questions),
        "tune_questions": len(tune),
        "held_out_questions": len(held_out),
        "gold_in_minilm_top20": round(
            float(np.mean([g in t for g, t in zip(gold, top20, strict=True)])), 4
        ),
        "blend_weight_grid_on_tune": {str(w): grid[w] for w in GRID},
        "blend_weight": best,
        "held_out": evaluate(orders, held_out, top20, gold),
        "tune": evaluate(orders, tune, top20, gold),
        "pruner_scoring_s": round(scoring_s, 1),
        "machine": machine(),
    }
    for name, row in result["held_out"].items():
        print(f"{name:40s}", row, flush=True)
    write_json("rerank", result)
    plot(result)
    print(f"wrote {RESULTS / 'rerank.json'} and .png")


def plot(result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["held_out"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for offset, metric in ((-0.2, "mrr@10"), (0.2, "recall@3")):
        values = [rows[n][metric] for n in names]
        ax.barh([i + offset for i in range(len(names))], values, height=0.38, label=metric)
        for i, v in enumerate(values):
            ax.text(v + 0.005, i + offset, f"{v:.3f}", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0.5, 1.0)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"Reranking MiniLM's top 20, {result['held_out_questions']} held-out SQuAD dev questions",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(RESULTS / "rerank.png", dpi=120)


if __name__ == "__main__":
    main()
