"""Sentence-level pruner quality on the pruner dev split (documents never trained on).

    python -m bench.pruner_eval [--checkpoint pruner/checkpoint]

For the trained model and the similarity baseline, at thresholds 0.01–0.9: precision / recall /
F1 of kept sentences vs gold, answer kept (a relevant passage keeps a gold sentence), compression
(characters and MiniLM word-piece tokens removed) and the passage-score AUC. Keep-all and random
pruning that keeps the same share of sentences as the trained model are in the same table. Writes
bench/results/pruner_eval.json and pruner_eval.png; about 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from bench.common import RESULTS, data_dir, machine, write_json
from index import CachedEncoder, Embedder
from pruner import ContextPruner, Pruner, SimilarityPruner
from pruner.data import Example, build
from pruner.evaluate import CountTokens, evaluate, keep_all, random_at, wordpiece_counter


def run(name: str, pruner: Pruner, dev: list[Example], count: CountTokens) -> dict[str, Any]:
    started = time.perf_counter()
    report = evaluate(pruner, dev, count)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["default_threshold"] = pruner.default_threshold
    print(name, "AUC", report["all"]["rerank_auc"], report["seconds"], "s", flush=True)
    return report


def at_threshold(report: dict[str, Any], threshold: float) -> dict[str, Any]:
    rows = report["all"]["by_threshold"]
    return dict(min(rows, key=lambda r: abs(r["threshold"] - threshold)))


def plot(results: dict[str, Any], dev: list[Example]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    for name, report in results.items():
        rows = report["all"]["by_threshold"]
        xs = [r["compression_tokens"] for r in rows]
        ys = [r["answer_kept"] for r in rows]
        label = f"{name} (passage AUC {report['all']['rerank_auc']:.3f})"
        left.plot(xs, ys, marker="o", label=label)
        for r, x, y in zip(rows, xs, ys, strict=True):
            left.annotate(
                f"{r['threshold']}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        thresholds = [r["threshold"] for r in rows]
        for key, style in (("precision", ":"), ("recall", "--"), ("f1", "-")):
            right.plot(thresholds, [r[key] for r in rows], style, label=f"{name} {key}")
    shares = [i / 20 for i in range(21)]
    rand = [random_at(dev, p) for p in shares]
    left.plot(
        [r["compression"] for r in rand], [r["answer_kept"] for r in rand], "k:", label="random"
    )
    left.set_xlabel("context removed (share of word-piece tokens)")
    left.set_ylabel("relevant passages keeping a gold sentence")
    left.set_title("Answer kept vs compression (labels: threshold)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.set_xlabel("threshold")
    right.set_title("Kept sentences vs gold sentences")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, ncol=2)
    fig.suptitle(f"Pruner dev split ({len(dev)} passages, documents never trained on)")
    fig.tight_layout()
    fig.savefig(RESULTS / "pruner_eval.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N dev examples (smoke runs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    dev = build(data_dir())["dev"]
    dev = dev[: args.limit] if args.limit else dev
    count = wordpiece_counter()
    embedder = Embedder().load()
    trained = ContextPruner(args.checkpoint).load()
    results = {
        "trained": run("trained", trained, dev, count),
        "similarity": run(
            "similarity", SimilarityPruner(CachedEncoder(embedder.encode)), dev, count
        ),
    }
    default = at_threshold(results["trained"], trained.default_threshold)
    summary = {
        "trained": default,
        "similarity": at_threshold(results["similarity"], SimilarityPruner.default_threshold),
        "keep_all": keep_all(dev),
        "random_same_share_of_sentences": random_at(dev, default["sentences_kept"]),
    }
    for name, row in summary.items():
        print(f"{name:32s}", {k: row[k] for k in ("precision", "recall", "f1", "answer_kept")})
    write_json(
        "pruner_eval",
        {
            "checkpoint": str(trained.path),
            "dev_examples": len(dev),
            "at_default_thresholds": summary,
            "results": results,
            "machine": machine(),
        },
    )
    plot(results, dev)


if __name__ == "__main__":
    main()
