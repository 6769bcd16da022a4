"""Trained pruner vs the similarity baseline on the pruner dev split (documents never trained on).

    python -m bench.pruner_eval [--checkpoint pruner/checkpoint]

Writes bench/results/pruner_eval.json and pruner_eval.png (answer kept vs compression, one point
per threshold, for both pruners) plus the time each took to score the dev set on this machine.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from bench.common import RESULTS, data_dir, machine, write_json
from index import CachedEncoder, Embedder
from pruner import ContextPruner, Pruner, SimilarityPruner
from pruner.data import build
from pruner.evaluate import evaluate


def run(name: str, pruner: Pruner, dev: list[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    report = evaluate(pruner, dev)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(name, report["all"]["rerank_auc"], report["seconds"], "s", flush=True)
    return report


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, report in results.items():
        rows = report["all"]["by_threshold"]
        xs = [r["compression"] for r in rows]
        ys = [r["answer_kept"] for r in rows]
        ax.plot(xs, ys, marker="o", label=f"{name} (rerank AUC {report['all']['rerank_auc']:.3f})")
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(
                f"{r['threshold']}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    ax.set_xlabel("context removed (share of characters)")
    ax.set_ylabel("relevant passages keeping a gold sentence")
    ax.set_title("Pruner dev split: answer kept vs compression")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "pruner_eval.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    dev = build(data_dir())["dev"]
    embedder = Embedder().load()
    results = {
        "trained": run("trained", ContextPruner(args.checkpoint).load(), dev),
        "similarity": run("similarity", SimilarityPruner(CachedEncoder(embedder.encode)), dev),
    }
    write_json("pruner_eval", {"dev_examples": len(dev), "results": results, "machine": machine()})
    plot(results)


if __name__ == "__main__":
    main()
