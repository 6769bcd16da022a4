"""Multi-hop chaining end to end: what /ask SENDS to the LLM with one pass vs with hops.

    python -m bench.chain --data-dir runs/mh-data   # reuse bench.multihop's ingested corpus
    python -m bench.chain --single 150              # also SQuAD and WikiQA (single-hop) sets
    python -m bench.chain --why                     # also: why gold passages are not sent

For every question the full pipeline runs as /ask does (retrieve → prune → hops → budget; no
LLM call: the context is what counts), with ``hops`` 0 (one pass), 1 and 2, and one pass
unpruned (``prune_threshold`` 0). Per family it reports: all gold passages in the context sent,
an answer string in the context sent, tokens sent, and the retrieve + prune time (p50 / p95).

Multi-hop families: bench.multihop's corpus (12,239 paragraphs) and questions; HotpotQA fullwiki
and MuSiQue are held out (the pruner never trained on them; the hop limits were set a priori
and not tuned on any of them), the HotpotQA train sample is reported apart. Single-hop
families (``--single N``): N SQuAD (dev-split articles) and WikiQA cases of bench.families, their
candidate passages ingested as one corpus each; the issue allows them to lose at most one point.
With ``--why`` every question is asked once more with one hop and ``explain`` (untimed, after
the timed variants) and each gold passage the hop's context does not send is put in one bin:
never retrieved (neither pass had it), retrieved but not kept and not judged again by the hop
(no chosen bridge names it), kept but left out by top_k or the token budget, judged again by the
hop and rejected, or accepted by the hop but over the budget.
Writes bench/results/chain.json + chain.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.answers import AskOptions
from app.parsing import parse_text
from app.services import Services
from app.settings import Settings
from bench.common import RESULTS, data_dir, machine, percentiles, write_json
from bench.families import load as load_family
from bench.multihop import load as load_multihop
from index import Embedder

VARIANTS: dict[str, dict[str, Any]] = {
    "one pass, unpruned": {"hops": 0, "prune_threshold": 0.0},
    "one pass": {"hops": 0},
    "hops 1": {"hops": 1},
    "hops 2": {"hops": 2},
}


@dataclass(frozen=True)
class Item:
    question: str
    gold: frozenset[str]  # document ids that must all be in the context
    answers: tuple[str, ...]
    family: str


def ingest(services: Services, passages: Sequence[tuple[str, str]], batch: int = 64) -> dict:
    """(title, text) -> document id, ingesting what the data dir does not hold yet."""
    collection = services.default_collection
    ids: dict[tuple[str, str], str] = {}
    for start in range(0, len(passages), batch):
        part = passages[start : start + batch]
        results = collection.ingest([(parse_text(t, x), "json") for t, x in part])
        ids.update({p: r.document.id for p, r in zip(part, results, strict=True)})
    collection.save_index()
    return ids


def multihop_items(services: Services) -> list[Item]:
    corpus, questions = load_multihop()
    ids = ingest(services, corpus)  # the same content is stored once: a reused dir is quick
    return [
        Item(
            q.text,
            frozenset(ids[p] for p in q.gold),
            q.answers,
            "hotpotqa_train100 (trained on)"
            if q.trained_on
            else "hotpotqa_train100 (dev split)"
            if q.source == "hotpotqa_train100"
            else q.source,
        )
        for q in questions
        if q.answers
    ]


def single_items(services: Services, family: str, limit: int) -> list[Item]:
    cases = load_family(family, data_dir(), limit)
    passages = list(
        dict.fromkeys(
            (c.title or family, " ".join(c.sentences)) for x in cases for c in x.candidates
        )
    )
    ids = ingest(services, passages)
    items = []
    for x in cases:
        relevant = [c for c in x.candidates if c.relevant]
        answers = x.answers or tuple(c.sentences[i] for c in relevant for i in c.evidence)
        if not answers:
            continue
        gold = frozenset(ids[(c.title or family, " ".join(c.sentences))] for c in relevant)
        items.append(Item(x.question, gold, answers, family))
    return items


MISSES = (
    "never retrieved",
    "retrieved, not kept, not judged again",
    "kept, over top_k or the budget",
    "judged again by a hop, rejected",
    "accepted by a hop, over the budget",
)


def misses(services: Services, item: Item, options: AskOptions) -> list[str]:
    """Why each gold passage the hop's context leaves out is missing (one of ``MISSES``)."""
    answer = services.pipeline._retrieve_and_prune(item.question, options, {})
    sent = {c.chunk.document_id for c in answer.citations}
    explained: dict[str, Any] = answer.explain or {}
    by_document: dict[str, list[dict[str, Any]]] = {}
    for c in explained.get("candidates", []):
        by_document.setdefault(c["document_id"], []).append(c)
    judged_ids = [i for t in explained.get("hops", []) for i in t.get("pruned_again_chunk_ids", [])]
    judged = {c.document_id for c in services.default_collection.chunks(judged_ids)}
    out = []
    for gold in sorted(item.gold - sent):
        chunks = by_document.get(gold, [])
        if not chunks and gold not in judged:
            out.append(MISSES[0])
        elif any(c["hop"] > 0 for c in chunks):
            out.append(MISSES[4])
        elif gold in judged:
            out.append(MISSES[3])
        elif any(c["kept_sentences"] for c in chunks):
            out.append(MISSES[2])
        else:
            out.append(MISSES[1])
    return out


def run(
    services: Services, items: list[Item], why: dict[str, dict[str, int]] | None = None
) -> dict[str, dict[str, Any]]:
    """Per family, per variant: all gold sent, answer sent, tokens sent, time. Question by
    question, every variant in turn after one untimed warm-up pass (the embedder's cache then
    holds the question for all of them alike); the pruner's cache is off (Settings below).
    With ``why`` (family -> bins), each question's missing gold passages are binned too."""
    families = sorted({i.family for i in items})
    options = {name: services.sieve.options(**overrides) for name, overrides in VARIANTS.items()}
    rows: dict[str, dict[str, list[tuple[bool, bool, int, float, int]]]] = {
        name: {f: [] for f in families} for name in VARIANTS
    }
    for n, item in enumerate(items):
        services.pipeline._retrieve_and_prune(item.question, options["one pass"], {})
        for name, chosen in options.items():
            started = time.perf_counter()
            answer = services.pipeline._retrieve_and_prune(item.question, chosen, {})
            ms = (time.perf_counter() - started) * 1000
            sent = {c.chunk.document_id for c in answer.citations}
            context = answer.context.casefold()
            rows[name][item.family].append(
                (
                    item.gold <= sent,
                    any(a.casefold() in context for a in item.answers),
                    answer.tokens_after,
                    ms,
                    answer.hops,
                )
            )
        if why is not None:
            bins = why.setdefault(item.family, {b: 0 for b in MISSES})
            for miss in misses(services, item, replace(options["hops 1"], explain=True)):
                bins[miss] += 1
        if n % 50 == 0:
            print(f"asked {n}/{len(items)}", flush=True)
    out: dict[str, dict[str, Any]] = {}
    for name, by_family in rows.items():
        for family, r in by_family.items():
            out.setdefault(family, {})[name] = {
                "questions": len(r),
                "all_gold_sent": round(float(np.mean([x[0] for x in r])), 4),
                "answer_sent": round(float(np.mean([x[1] for x in r])), 4),
                "tokens_sent_mean": round(float(np.mean([x[2] for x in r])), 1),
                "ms": percentiles([x[3] for x in r]),
                "questions_with_a_hop": round(float(np.mean([x[4] > 0 for x in r])), 4),
            }
        print(name, json.dumps({f: out[f][name] for f in families}), flush=True)
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(result["families"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(VARIANTS)
    for ax, metric, label in (
        (axes[0], "all_gold_sent", "all gold passages in the context sent"),
        (axes[1], "answer_sent", "answer string in the context sent"),
    ):
        for j, name in enumerate(VARIANTS):
            values = [result["families"][f][name][metric] for f in families]
            ax.bar(np.arange(len(families)) + j * width, values, width, label=name)
        ax.set_xticks(
            np.arange(len(families)) + width * (len(VARIANTS) - 1) / 2,
            [f.replace("_", "\n", 1) for f in families],
            fontsize=7,
        )
        ax.set_ylim(0, 1.05)
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _settings(data: Path) -> Settings:
    """The service's defaults, without the pruner's result cache: every variant pays its own
    forward passes."""
    return Settings(data_dir=data, pruner_cache_size=0, _env_file=None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="multi-hop corpus dir (bench.multihop's)")
    parser.add_argument("--questions", type=int, default=0, help="multi-hop sample (0: all)")
    parser.add_argument("--single", type=int, default=0, help="SQuAD and WikiQA cases each")
    parser.add_argument("--name", default="chain")
    parser.add_argument("--why", action="store_true", help="bin the gold passages not sent")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    embedder = Embedder().load()
    families: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir or Path(tmp) / "multihop"
        services = Services.build(_settings(data), embedder)
        items = multihop_items(services)
        if args.questions:
            items = items[: args.questions]
        print(f"multi-hop: {len(items)} questions", flush=True)
        why: dict[str, dict[str, int]] | None = {} if args.why else None
        families.update(run(services, items, why))
        for family in ("squad", "wikiqa") if args.single else ():
            single = Services.build(_settings(Path(tmp) / family), embedder)
            families.update(run(single, single_items(single, family, args.single), why))
    result = {
        "benchmark": "multi-hop chaining end to end (context sent)",
        "machine": machine(),
        "variants": VARIANTS,
        "families": families,
        **({"why_not_sent_hops_1": why} if why is not None else {}),
    }
    write_json(args.name, result)
    plot(result, RESULTS / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
