"""Pruner metrics on the dev split (documents never trained on).

    python -m pruner.evaluate --checkpoint pruner/checkpoint

For each threshold: recall of gold sentences, share of relevant passages that keep at least one
gold sentence ("answer kept"), compression (share of characters removed) over all passages and
over irrelevant ones (ideally 100 %), and the AUC of the passage score (relevant vs not).
bench/pruner_eval.py runs this for the trained model and the similarity baseline side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pruner.base import PrunedContext, Pruner
from pruner.data import Example, build

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j + 1) / 2  # 1-based average rank of the tie group
        rank_sum += avg_rank * sum(lab for _, lab in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def score(pruner: Pruner, examples: list[Example]) -> list[PrunedContext]:
    """Every sentence scored once (threshold 0); thresholds are applied afterwards."""
    by_question: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_question.setdefault(ex.question, []).append(i)
    results: dict[int, PrunedContext] = {}
    for question, idx in by_question.items():
        for i, r in zip(
            idx, pruner.process(question, [examples[i].sentences for i in idx], 0.0), strict=True
        ):
            results[i] = r
    return [results[i] for i in range(len(examples))]


def metrics(examples: list[Example], scored: list[PrunedContext]) -> dict[str, Any]:
    table = []
    for t in THRESHOLDS:
        gold = kept_gold = answered = relevant = 0
        chars = kept_chars = irr_chars = irr_kept = 0
        for ex, r in zip(examples, scored, strict=True):
            keep = [s >= t for s in r.sentence_scores]
            lengths = [len(s) for s in ex.sentences]
            chars += sum(lengths)
            kept_chars += sum(n for n, k in zip(lengths, keep, strict=True) if k)
            if ex.relevant:
                relevant += 1
                hits = [k for k, lab in zip(keep, ex.labels, strict=True) if lab]
                gold += len(hits)
                kept_gold += sum(hits)
                answered += any(hits)
            else:
                irr_chars += sum(lengths)
                irr_kept += sum(n for n, k in zip(lengths, keep, strict=True) if k)
        table.append(
            {
                "threshold": t,
                "gold_sentence_recall": round(kept_gold / max(gold, 1), 4),
                "answer_kept": round(answered / max(relevant, 1), 4),
                "compression": round(1 - kept_chars / max(chars, 1), 4),
                "compression_irrelevant": round(1 - irr_kept / max(irr_chars, 1), 4),
            }
        )
    return {
        "examples": len(examples),
        "relevant_passages": sum(ex.relevant for ex in examples),
        "rerank_auc": round(
            auc([r.rerank_score for r in scored], [int(ex.relevant) for ex in examples]), 4
        ),
        "by_threshold": table,
    }


def evaluate(pruner: Pruner, examples: list[Example]) -> dict[str, Any]:
    scored = score(pruner, examples)
    report: dict[str, Any] = {"all": metrics(examples, scored)}
    for source in sorted({ex.source for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.source == source]
        report[source] = metrics([examples[i] for i in idx], [scored[i] for i in idx])
    return report


def main() -> None:
    from pruner.inference import ContextPruner

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if not Path(args.data).is_dir():
        raise SystemExit(f"evaluation data not found at {args.data}")
    dev = build(Path(args.data))["dev"]
    print(json.dumps(evaluate(ContextPruner(args.checkpoint), dev), indent=1))


if __name__ == "__main__":
    main()
