"""Fit the sentence blend (pruner/blend.py) on the tune families and report it on every family.

    python -m bench.blend                                  # the shipped checkpoint (~12 min)
    python -m bench.blend --checkpoint runs/pruner-v3c --scores runs/v3c.pkl   # reuse scores
    python -m bench.blend --write                          # also store blend.json beside it

The keep decision is a logistic regression over the pruner's keep and rank logits and the MiniLM
question-sentence cosines (``pruner.blend.FEATURES``). Everything is decided on the tune families
(bench/families.py: sources the pruner trained on, documents it never saw) by rules written here
before any held-out figure is read; the held-out families (HotpotQA fullwiki, MuSiQue, COVID-QA,
SubjQA) are only reported:

- label: a sentence of a relevant passage that is gold evidence or holds an answer string;
- fit: L2 logistic regression (C = 1), each tune family weighing the same (a family of fewer than
  ``FULL_WEIGHT_CASES`` cases proportionally less), 2-fold by case so every tune case gets a score
  from a model that did not see it (out of fold); the stored model is then fitted on all of them;
- keep threshold: the largest of ``GRID`` at which every tune family of at least ``MIN_CASES``
  cases keeps >= 95 % of its answers and >= 92 % of its evidence sentences, out of fold (the
  smallest of GRID when none does); smaller families are reported, too few to bind a 95 % rule;
- answer weight: the cosine weight of ``pruner.answer.answer_scores`` (fed the blend's
  probability) with the best mean out-of-fold top-1 over the tune families that have one.

Tune cases: up to 300 per family; held-out: up to 120. Per family it reports, at the chosen
threshold, tokens removed and answers kept / evidence recall of the blend beside the keep
probability and the sentence cosine at the SAME share of tokens removed, each scorer's tokens
removed at the targets (threshold set per family, an upper bound), and answer top-1.
Writes bench/results/blend.json + blend.png (and ``<checkpoint>/blend.json`` with --write).
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, data_dir, machine, write_json
from bench.families import FAMILIES, ROLE, load
from bench.heldout import Scored, matched, prune_report, score_case, top1
from pruner.answer import ANSWER_COSINE_WEIGHT, answer_scores
from pruner.blend import BLEND_FILE, FEATURES, SentenceBlend, features

GRID = (0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.05, 0.07, 0.1, 0.2)
ANSWER_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_CASES = 30
FULL_WEIGHT_CASES = 50
TUNE_LIMIT, HELDOUT_LIMIT = 300, 120
ANSWER_KEPT_MIN, EVIDENCE_RECALL_MIN = 0.95, 0.92

Table = dict[int, list[list[float]]]  # id(Scored) -> per candidate, per sentence


def labelled(x: Scored) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 labels of every sentence of one case."""
    rows, labels = [], []
    for ci, c in enumerate(x.case.candidates):
        rows.append(features(x.keep[ci], x.sent_cos[ci], x.rank[ci]))
        for si, s in enumerate(c.sentences):
            holds = any(a.casefold() in s.casefold() for a in x.case.answers)
            labels.append(int(c.relevant and (si in c.evidence or holds)))
    return np.concatenate(rows), np.asarray(labels)


def fit(families: dict[str, list[Scored]], pick: Callable[[int], bool]) -> tuple[np.ndarray, float]:
    """Weights and bias of the logistic regression on the picked cases of every family."""
    from sklearn.linear_model import LogisticRegression

    xs, ys, ws = [], [], []
    for cases in families.values():
        parts = [labelled(x) for i, x in enumerate(cases) if pick(i)]
        if not parts:
            continue
        y = np.concatenate([p[1] for p in parts])
        xs.append(np.concatenate([p[0] for p in parts]))
        ys.append(y)
        ws.append(np.full(len(y), min(1.0, len(cases) / FULL_WEIGHT_CASES) / len(y)))
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y, sample_weight=w * len(y))
    return model.coef_[0], float(model.intercept_[0])


def apply(blend: SentenceBlend, x: Scored) -> list[list[float]]:
    return [blend.scores(k, c, r) for k, c, r in zip(x.keep, x.sent_cos, x.rank, strict=True)]


def at(table: Table, threshold: float) -> Callable[[Scored], list[list[bool]]]:
    return lambda x: [[v >= threshold for v in row] for row in table[id(x)]]


def meets(report: dict[str, Any]) -> bool:
    answers = report["answer_kept"] is None or report["answer_kept"] >= ANSWER_KEPT_MIN
    evidence = report["evidence_recall"] is None or report["evidence_recall"] >= EVIDENCE_RECALL_MIN
    return bool(answers and evidence)


def removed_at_target(cases: list[Scored], table: Table) -> float:
    """The most tokens removed at a threshold (set for this family alone) that still meets
    the targets: the best this scorer could do here, an upper bound."""
    values = sorted({round(v, 6) for x in cases for row in table[id(x)] for v in row})
    best = 0.0
    # thresholds only ever remove more as they rise: bisect over the sorted distinct values
    low, high = 0, len(values) - 1
    while low <= high:
        mid = (low + high) // 2
        report = prune_report(cases, at(table, values[mid]))
        if meets(report):
            best = max(best, report["tokens_removed"])
            low = mid + 1
        else:
            high = mid - 1
    return round(best, 4)


def answer_table(table: Table, weight: float) -> Callable[[Scored], list[list[float]]]:
    def score_of(x: Scored) -> list[list[float]]:
        return [
            answer_scores(c.sentences, k, s, weight)
            for c, k, s in zip(x.case.candidates, table[id(x)], x.sent_cos, strict=True)
        ]

    return score_of


def choose(tune: dict[str, list[Scored]], oof: Table) -> tuple[float, float, dict[str, Any]]:
    """The threshold and answer-weight rules (module docstring), out of fold."""
    binding = [name for name, cases in tune.items() if len(cases) >= MIN_CASES]
    sweep = {
        name: {f"{t:g}": prune_report(cases, at(oof, t)) for t in GRID}
        for name, cases in tune.items()
    }
    binding = binding or list(tune)  # no family is big enough: every one binds
    good = [t for t in GRID if all(meets(sweep[name][f"{t:g}"]) for name in binding)]
    threshold = max(good) if good else min(GRID)
    top: dict[float, list[float]] = {}
    for w in ANSWER_WEIGHTS:
        found = [top1(cases, answer_table(oof, w)) for cases in tune.values()]
        top[w] = [f for f in found if f is not None]
    weight = (
        max(ANSWER_WEIGHTS, key=lambda w: float(np.mean(top[w])))
        if top[ANSWER_WEIGHTS[0]]
        else ANSWER_COSINE_WEIGHT  # no tune family knows its answer sentence: as without a blend
    )
    return threshold, weight, {"binding": binding, "sweep": sweep, "passing": good}


def family_report(cases: list[Scored], table: Table, threshold: float, weight: float) -> dict:
    blend = prune_report(cases, at(table, threshold))
    removed = blend["tokens_removed"]
    keep_table = {id(x): x.keep for x in cases}
    cos_table = {id(x): x.sent_cos for x in cases}
    return {
        "role": ROLE[cases[0].case.family],
        "cases": len(cases),
        "blend": {"threshold": threshold, **blend},
        "keep_matched": matched(cases, removed, lambda x: x.keep)[1],
        "cosine_matched": matched(cases, removed, lambda x: x.sent_cos)[1],
        "tokens_removed_at_target": {
            "blend": removed_at_target(cases, table),
            "keep probability": removed_at_target(cases, keep_table),
            "MiniLM cosine": removed_at_target(cases, cos_table),
        },
        "curve": {f"{t:g}": prune_report(cases, at(table, t)) for t in GRID},
        "answer_top1": {
            "keep probability": top1(cases, lambda x: x.keep),
            "MiniLM cosine": top1(cases, lambda x: x.sent_cos),
            f"answer score on the blend, w={weight:g}": top1(cases, answer_table(table, weight)),
        },
    }


def score_all(checkpoint: Path, cache: Path | None) -> dict[str, list[Scored]]:
    if cache is not None and cache.exists():
        loaded = pickle.loads(cache.read_bytes())  # a file this bench wrote (trusted input)
        if loaded.get("checkpoint") != str(checkpoint.resolve()):
            sys.exit(f"{cache} holds scores of {loaded.get('checkpoint')}, not {checkpoint}")
        scored: dict[str, list[Scored]] = loaded["scored"]
        return scored
    from app.precision import resolve_precision
    from index import Embedder
    from pruner import ContextPruner

    chosen = resolve_precision("auto", "cpu")
    embedder = Embedder(device="cpu", precision=chosen.precision).load()
    pruner = ContextPruner(checkpoint, device="cpu", precision=chosen.precision).load()
    data = data_dir()
    scored = {}
    for name in FAMILIES:
        started = time.perf_counter()
        limit = TUNE_LIMIT if ROLE[name] == "tune" else HELDOUT_LIMIT
        scored[name] = [score_case(c, pruner, embedder) for c in load(name, data, limit)]
        print(name, len(scored[name]), f"{time.perf_counter() - started:.0f} s", flush=True)
    if cache is not None:
        cache.write_bytes(pickle.dumps({"checkpoint": str(checkpoint.resolve()), "scored": scored}))
    return scored


def plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    scorers = ["blend", "keep probability", "MiniLM cosine"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(scorers)
    for i, s in enumerate(scorers):
        ax.bar(
            [j + i * width for j in range(len(names))],
            [reports[n]["tokens_removed_at_target"][s] for n in names],
            width,
            label=s,
        )
    ax.set_xticks([j + 0.4 for j in range(len(names))], names, rotation=30, ha="right")
    ax.axhline(0.6, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylabel("tokens removed at >= 95 % answers / 92 % evidence")
    ax.set_title("sentence pruning per family: the most compression that still meets the targets")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="pruner checkpoint dir")
    parser.add_argument("--scores", type=Path, default=None, help="cache of the scored cases")
    parser.add_argument("--write", action="store_true", help="store blend.json beside it")
    parser.add_argument("--name", default="blend", help="results file name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from pruner.inference import CHECKPOINT

    checkpoint = args.checkpoint or CHECKPOINT
    scored = score_all(checkpoint, args.scores)
    tune = {n: c for n, c in scored.items() if ROLE[n] == "tune"}
    oof: Table = {}
    for half in (0, 1):
        w, b = fit(tune, lambda i, half=half: i % 2 != half)  # type: ignore[misc]
        model = SentenceBlend(tuple(float(v) for v in w), b, 0.0, 0.0)
        for cases in tune.values():
            oof.update({id(x): apply(model, x) for i, x in enumerate(cases) if i % 2 == half})
    threshold, weight, rule = choose(tune, oof)
    weights, bias = fit(tune, lambda i: True)
    blend = SentenceBlend(
        tuple(float(v) for v in weights),
        bias,
        threshold,
        weight,
        {
            "fitted_on": {n: len(c) for n, c in tune.items()},
            "rule": "bench/blend.py (module docstring)",
        },
    )
    reports: dict[str, dict[str, Any]] = {}
    for name, cases in scored.items():
        table = oof if ROLE[name] == "tune" else {id(x): apply(blend, x) for x in cases}
        reports[name] = family_report(cases, table, threshold, weight)
        r = reports[name]
        key = "answer_kept" if r["blend"]["answer_kept"] is not None else "evidence_recall"
        print(
            f"{name:16s} {r['role']:8s} removed {r['blend']['tokens_removed']:.3f} "
            f"{key} blend {r['blend'][key]:.3f} keep {r['keep_matched'][key]:.3f} "
            f"cosine {r['cosine_matched'][key]:.3f} | at target {r['tokens_removed_at_target']}",
            flush=True,
        )
    print("chosen on the tune families:", {"threshold": threshold, "answer_weight": weight})
    write_json(
        args.name,
        {
            "machine": machine(),
            "checkpoint": str(checkpoint),
            "features": list(FEATURES),
            "weights": list(blend.weights),
            "bias": bias,
            "chosen": {"threshold": threshold, "answer_cosine_weight": weight, **rule},
            "families": reports,
        },
    )
    plot(reports, RESULTS / f"{args.name}.png")
    if args.write:
        blend.save(checkpoint / BLEND_FILE)
        print("wrote", checkpoint / BLEND_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
