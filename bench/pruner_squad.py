"""The pruner on retrieved SQuAD passages: answer retention, reranking quality, speed.

    python -m bench.pruner_squad [--checkpoint DIR] [--questions N] [--speed-queries 100]

Corpus: all 2,067 SQuAD v1.1 dev paragraphs. Questions: those of the articles in the pruner's
dev split (pruner/data.py; never trained on), 1,478 of them. Distractors and candidates come from
the whole corpus, so some are paragraphs of training articles (never with these questions).

1. Retention: the gold paragraph among its 4 best MiniLM-retrieved other paragraphs; each pruner
   at its default threshold. Does a gold answer string survive in the kept text (of the gold
   paragraph; of all five)? Share of the five passages' word-piece tokens removed. Keep-all and
   random pruning that keeps the same share of sentences as the trained model are baselines.
2. Reranking: MiniLM's top-20 paragraphs per question; MRR@10, recall@1 and recall@3 of the
   gold paragraph in bi-encoder order, BM25 order of the same 20, the similarity baseline's and
   the trained pruner's order; plus BM25 retrieval over the whole corpus (500 random questions).
3. Speed (CPU here; GPU when torch sees one): ms per query for 20 candidates with pruning
   (``process``) and with reranking alone (``rerank``, same forward pass without the token head).

Writes bench/results/pruner_squad.json (+ .png); ~15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import RESULTS, data_dir, machine, percentiles, require, write_json
from index import CachedEncoder, Embedder
from pruner import ContextPruner, PrunedContext, Pruner, SimilarityPruner, assemble
from pruner.data import split_of
from pruner.evaluate import wordpiece_counter
from pruner.inference import split_sentences

SWEEP = {"trained": (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5), "similarity": (0.2, 0.3, 0.4, 0.5, 0.6)}
# thresholds tried when choosing the trained pruner's default on tune questions only
CHOICE_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3)
TARGET_RETENTION = 0.97


@dataclass(frozen=True)
class Question:
    text: str
    gold: int  # paragraph index
    answers: list[str]


def load() -> tuple[list[list[str]], list[Question]]:
    """Paragraphs as sentence lists (all articles) and the dev-split articles' questions."""
    raw = json.loads(require(data_dir() / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]
    paragraphs: list[list[str]] = []
    questions: list[Question] = []
    for article in raw:
        dev = split_of("squad_v1", article["title"]) == "dev"
        for para in article["paragraphs"]:
            paragraphs.append(split_sentences(para["context"]))
            if dev:
                for qa in para["qas"]:
                    answers = sorted({a["text"] for a in qa["answers"]})
                    questions.append(Question(qa["question"], len(paragraphs) - 1, answers))
    return paragraphs, questions


def has_answer(text: str, answers: Sequence[str]) -> bool:
    low = text.lower()
    return any(a.lower() in low for a in answers)


def mrr_recall(ranked: list[list[int]], gold: list[int]) -> dict[str, float]:
    rr, r1, r3 = [], [], []
    for order, g in zip(ranked, gold, strict=True):
        pos = order.index(g) if g in order else None
        rr.append(1.0 / (pos + 1) if pos is not None and pos < 10 else 0.0)
        r1.append(pos is not None and pos < 1)
        r3.append(pos is not None and pos < 3)
    return {
        "mrr@10": round(float(np.mean(rr)), 4),
        "recall@1": round(float(np.mean(r1)), 4),
        "recall@3": round(float(np.mean(r3)), 4),
    }


def retention(
    name: str,
    results: list[list[PrunedContext]],
    passages: list[list[list[str]]],
    questions: list[Question],
    count: Any,
) -> dict[str, Any]:
    """Answer kept in the gold passage (index 0 of each list) and in all five; tokens removed."""
    in_gold = in_any = 0
    tokens = kept_tokens = sentences = kept_sentences = 0
    for res, group, q in zip(results, passages, questions, strict=True):
        in_gold += has_answer(res[0].pruned_text, q.answers)
        in_any += has_answer(" ".join(r.pruned_text for r in res), q.answers)
        for r, sents in zip(res, group, strict=True):
            counts = count(sents)
            tokens += sum(counts)
            kept_tokens += sum(counts[i] for i in r.kept)
            sentences += len(sents)
            kept_sentences += len(r.kept)
    n = len(questions)
    out = {
        "answer_in_pruned_gold_passage": round(in_gold / n, 4),
        "answer_in_pruned_context": round(in_any / n, 4),
        "tokens_removed": round(1 - kept_tokens / max(tokens, 1), 4),
        "sentences_kept": round(kept_sentences / max(sentences, 1), 4),
        "questions": n,
    }
    print(name, out, flush=True)
    return out


def random_pruning(
    passages: list[list[list[str]]], share: float, seed: int
) -> list[list[PrunedContext]]:
    rng = random.Random(seed)
    out = []
    for group in passages:
        row = []
        for sents in group:
            kept = [i for i in range(len(sents)) if rng.random() < share]
            row.append(PrunedContext(kept, [], " ".join(sents[i] for i in kept), 0.0, 0.0))
        out.append(row)
    return out


def keep_everything(passages: list[list[list[str]]]) -> list[list[PrunedContext]]:
    return [
        [PrunedContext(list(range(len(s))), [], " ".join(s), 0.0, 0.0) for s in group]
        for group in passages
    ]


def per_question(
    pruner: Pruner,
    questions: list[Question],
    groups: list[list[list[str]]],
    threshold: float | None = None,
) -> Any:
    return [
        pruner.process(q.text, g, threshold, always_select_title=False)
        for q, g in zip(questions, groups, strict=True)
    ]


def at_threshold(
    scored: list[list[PrunedContext]], groups: list[list[list[str]]], threshold: float
) -> list[list[PrunedContext]]:
    """Results at ``threshold`` from results scored once at threshold 0."""
    return [
        [
            assemble(sents, r.sentence_scores, threshold, r.rerank_score)
            for r, sents in zip(res, group, strict=True)
        ]
        for res, group in zip(scored, groups, strict=True)
    ]


def choose_threshold(
    raw: list[list[PrunedContext]],
    groups: list[list[list[str]]],
    questions: list[Question],
    count: Any,
    tune: list[int],
) -> dict[str, Any]:
    """The largest threshold whose answer retention on the ``tune`` questions is ≥ the target,
    and what it gives on the other questions: a default chosen without looking at the figures
    it is reported with."""
    held = sorted(set(range(len(questions))) - set(tune))

    def subset(idx: list[int], t: float) -> dict[str, Any]:
        return retention(
            f"trained@{t} ({len(idx)} q)",
            at_threshold([raw[i] for i in idx], [groups[i] for i in idx], t),
            [groups[i] for i in idx],
            [questions[i] for i in idx],
            count,
        )

    on_tune = {t: subset(tune, t) for t in CHOICE_GRID}
    ok = [t for t in CHOICE_GRID if on_tune[t]["answer_in_pruned_context"] >= TARGET_RETENTION]
    chosen = max(ok) if ok else min(CHOICE_GRID)
    return {
        "rule": f"largest threshold with answer retention >= {TARGET_RETENTION} on tune questions",
        "tune_questions": len(tune),
        "held_out_questions": len(held),
        "tune_by_threshold": {str(t): on_tune[t] for t in CHOICE_GRID},
        "chosen": chosen,
        "held_out_at_chosen": subset(held, chosen),
    }


def speed(pruner: ContextPruner, questions: list[Question], cands: list[list[list[str]]]) -> Any:
    for q, c in zip(questions[:3], cands[:3], strict=True):  # warm-up
        pruner.process(q.text, c, always_select_title=False)
    prune_ms, rank_ms = [], []
    for q, c in zip(questions, cands, strict=True):
        t0 = time.perf_counter()
        pruner.process(q.text, c, always_select_title=False)
        t1 = time.perf_counter()
        pruner.rerank(q.text, c)
        t2 = time.perf_counter()
        prune_ms.append((t1 - t0) * 1000)
        rank_ms.append((t2 - t1) * 1000)
    p, r = percentiles(prune_ms), percentiles(rank_ms)
    per_query = sum(len(c) for c in cands) / len(cands)
    return {
        "device": pruner.device,
        "queries": len(questions),
        "candidates_per_query": per_query,
        "prune_and_rerank_ms": p,
        "rerank_only_ms": r,
        "passages_per_s": round(per_query / (p["mean"] / 1000), 1),
        "pruning_overhead_x": round(p["mean"] / r["mean"], 3),
    }


def plot(result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for rows in result["retention_by_threshold"].values():
        xs = [r["tokens_removed"] for r in rows]
        ys = [r["answer_in_pruned_context"] for r in rows]
        left.plot(xs, ys, ":", alpha=0.6)
        for r, x, y in zip(rows, xs, ys, strict=True):
            left.annotate(
                f"{r['threshold']}", (x, y), fontsize=6, xytext=(2, -8), textcoords="offset points"
            )
    for name, row in result["retention"].items():
        x, y = row["tokens_removed"], row["answer_in_pruned_context"]
        left.scatter([x], [y], s=40)
        left.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    left.axhline(0.97, color="grey", ls=":", lw=1)
    left.axvline(0.60, color="grey", ls=":", lw=1)
    left.set_xlabel("share of the 5 passages' tokens removed")
    left.set_ylabel("answer string still in the context")
    left.set_title("Gold + 4 retrieved distractors (dotted: targets)")
    left.grid(alpha=0.3)
    names = list(result["reranking"])
    mrr = [result["reranking"][n]["mrr@10"] for n in names]
    right.barh(names, mrr)
    for i, v in enumerate(mrr):
        right.annotate(f"{v:.3f}", (v, i), fontsize=8, xytext=(3, -3), textcoords="offset points")
    right.set_xlabel("MRR@10 of the gold paragraph")
    right.set_title("Reranking MiniLM's top 20")
    right.set_xlim(0, 1)
    fig.suptitle(f"SQuAD v1.1 dev, pruner dev-split questions ({result['questions']})")
    fig.tight_layout()
    fig.savefig(RESULTS / "pruner_squad.png", dpi=110)


def main() -> None:
    import bm25s

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--questions", type=int, default=0, help="first N questions (0: all)")
    parser.add_argument(
        "--rerank-questions", type=int, default=500, help="random sample for reranking (0: all)"
    )
    parser.add_argument("--speed-queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    paragraphs, questions = load()
    questions = questions[: args.questions] if args.questions else questions
    embedder = Embedder().load()
    count = wordpiece_counter()
    t0 = time.perf_counter()
    doc_vectors = embedder.encode([" ".join(p) for p in paragraphs])  # (P, D), normalised
    q_vectors = embedder.encode([q.text for q in questions])  # (Q, D)
    top20 = np.argsort(-(q_vectors @ doc_vectors.T), axis=1)[:, :20].tolist()
    print(f"embedded corpus and questions in {time.perf_counter() - t0:.0f} s", flush=True)

    trained = ContextPruner(args.checkpoint).load()
    similarity = SimilarityPruner(CachedEncoder(embedder.encode))

    # 1. retention: gold first in each group (scored independently, order does not matter)
    groups = [
        [paragraphs[q.gold], *[paragraphs[i] for i in top if i != q.gold][:4]]
        for q, top in zip(questions, top20, strict=True)
    ]
    raw = {
        "trained": per_question(trained, questions, groups, 0.0),
        "similarity": per_question(similarity, questions, groups, 0.0),
    }
    sweep: dict[str, list[dict[str, Any]]] = {}
    for name, thresholds in SWEEP.items():
        sweep[name] = [
            {
                "threshold": t,
                **retention(
                    f"{name}@{t}", at_threshold(raw[name], groups, t), groups, questions, count
                ),
            }
            for t in thresholds
        ]
    defaults = {"trained": trained.default_threshold, "similarity": similarity.default_threshold}
    ret = {
        "keep_all": retention("keep_all", keep_everything(groups), groups, questions, count),
        **{
            name: retention(
                name, at_threshold(raw[name], groups, defaults[name]), groups, questions, count
            )
            for name in ("similarity", "trained")
        },
    }
    # the same random questions bench/rerank.py tunes on; the rest are held out
    tune = sorted(random.Random(args.seed).sample(range(len(questions)), min(500, len(questions))))
    choice = choose_threshold(raw["trained"], groups, questions, count, tune)
    share = ret["trained"]["sentences_kept"]
    ret["random_same_share"] = retention(
        "random", random_pruning(groups, share, args.seed), groups, questions, count
    )

    # 2. reranking the 20 MiniLM candidates, on a random sample of the questions
    if args.rerank_questions and args.rerank_questions < len(questions):
        pick = sorted(random.Random(args.seed).sample(range(len(questions)), args.rerank_questions))
        questions = [questions[i] for i in pick]
        top20 = [top20[i] for i in pick]
    tokenized = bm25s.tokenize([" ".join(p) for p in paragraphs], show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokenized, show_progress=False)
    q_tokens = bm25s.tokenize([q.text for q in questions], return_ids=False, show_progress=False)
    cands = [[paragraphs[i] for i in top] for top in top20]
    empty = np.zeros(len(paragraphs), dtype=np.float32)  # a question of stopwords only
    bm25_scores = [bm25.get_scores(t) if t else empty for t in q_tokens]  # (P,) each
    t_rank = [
        [top[i] for i in np.argsort([-r.rerank_score for r in res], kind="stable")]
        for top, res in zip(top20, per_question(trained, questions, cands), strict=True)
    ]
    s_rank = [
        [top[i] for i in np.argsort([-r.rerank_score for r in res], kind="stable")]
        for top, res in zip(top20, per_question(similarity, questions, cands), strict=True)
    ]
    gold = [q.gold for q in questions]
    rerank = {
        "bi_encoder (MiniLM order)": mrr_recall(top20, gold),
        "bm25 over the same 20": mrr_recall(
            [
                [top[i] for i in np.argsort(-s[top], kind="stable")]
                for top, s in zip(top20, bm25_scores, strict=True)
            ],
            gold,
        ),
        "bm25 over the whole corpus": mrr_recall(
            [np.argsort(-s)[:20].tolist() for s in bm25_scores], gold
        ),
        "similarity pruner": mrr_recall(s_rank, gold),
        "trained pruner": mrr_recall(t_rank, gold),
    }
    for name, row in rerank.items():
        print(f"{name:28s}", row, flush=True)
    gold_in_20 = float(np.mean([g in top for g, top in zip(gold, top20, strict=True)]))

    # 3. speed
    n = min(args.speed_queries, len(questions))
    timing = speed(trained, questions[:n], cands[:n]) if n > 0 else {}
    print("speed", timing, flush=True)
    result = {
        "dataset": "SQuAD v1.1 dev: 2,067 paragraphs; questions of the pruner dev-split articles",
        "questions": len(groups),
        "rerank_questions": len(questions),
        "checkpoint": str(trained.path),
        "thresholds": {
            "trained": trained.default_threshold,
            "similarity": similarity.default_threshold,
        },
        "retention": ret,
        "retention_by_threshold": sweep,
        "threshold_choice": choice,
        "gold_in_minilm_top20": round(gold_in_20, 4),
        "reranking": rerank,
        "speed": timing,
        "machine": machine(),
    }
    write_json("pruner_squad", result)
    plot(result)
    print(f"wrote {RESULTS / 'pruner_squad.json'} and .png")


if __name__ == "__main__":
    main()
