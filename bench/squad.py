"""SQuAD v1.1 dev end-to-end benchmark: ingest, retrieval recall, /ask latency, pruning.

    python -m bench.squad                       # full run (~10 min on 2 CPU cores)
    python -m bench.squad --ask-sample 100      # quicker

Each of the 2,067 paragraphs becomes one document (JSON upload path: parse → chunk → embed →
SQLite + FAISS), in a fresh temporary data dir. Then, for all 10,570 questions:
recall@1/5/20 of the gold paragraph by vector search (a paragraph counts as found when one of its
chunks is in the top k), and the same after the pruner reranks the 20 candidates (as /ask orders).
On a fixed random sample: /ask latency per stage in-process and over HTTP (uvicorn on loopback,
client in this process), tokens before/after pruning, and whether a gold answer string
survives in the compacted context. Writes bench/results/squad.json and squad.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.collection import Collection
from app.parsing import parse_text
from app.services import Services
from app.settings import Settings
from bench.common import RESULTS, data_dir, machine, percentiles, require, write_json
from pruner import BlendedPruner
from pruner.data import split_of

STAGES = [
    "embed",
    "vector_search",
    "lexical_search",
    "graph_search",
    "fuse",
    "prune",
    "rerank",
    "sentence_blend",
    "budget",
    "answer_scores",
    "llm",
    "total",
]


def load_squad(
    dev_only: bool = False,
) -> tuple[list[tuple[str, str]], list[tuple[str, int, list[str]]]]:
    """Paragraphs as (title, text) and questions as (question, paragraph index, answers).

    With ``dev_only`` the questions are those of the articles in the pruner's dev split (all
    paragraphs stay in the corpus): figures for a trained pruner never use its training data.
    """
    raw = json.loads(require(data_dir() / "squad_v1.1" / "dev-v1.1.json").read_text())
    paragraphs: list[tuple[str, str]] = []
    questions: list[tuple[str, int, list[str]]] = []
    for article in raw["data"]:
        for i, para in enumerate(article["paragraphs"]):
            title = f"{article['title'].replace('_', ' ')} ({i + 1})"
            paragraphs.append((title, para["context"]))
            if dev_only and split_of("squad_v1", article["title"]) != "dev":
                continue
            for qa in para["qas"]:
                answers = sorted({a["text"] for a in qa["answers"]})
                questions.append((qa["question"], len(paragraphs) - 1, answers))
    return paragraphs, questions


def ingest(
    coll: Collection, paragraphs: list[tuple[str, str]], batch: int
) -> tuple[list[str], dict[str, Any]]:
    doc_ids: list[str] = []
    started = time.perf_counter()
    for i in range(0, len(paragraphs), batch):
        parsed = [(parse_text(t, x), "json") for t, x in paragraphs[i : i + batch]]
        doc_ids += [r.document.id for r in coll.ingest(parsed)]
    elapsed = time.perf_counter() - started
    chunks = coll.store.count_chunks()
    texts = [c.text for c in coll.store.get_chunks(coll.store.chunk_ids().tolist())]
    window = coll.embedder.max_seq_length - 2  # [CLS] and [SEP]
    truncated = sum(t > window for t in coll.embedder.count_tokens(texts))
    return doc_ids, {
        "documents": len(paragraphs),
        "chunks": chunks,
        "seconds": round(elapsed, 1),
        "chunks_per_s": round(chunks / elapsed, 1),
        "docs_per_s": round(len(paragraphs) / elapsed, 1),
        "batch": batch,
        "chunks_longer_than_embedder_window": truncated,
    }


def retrieval(
    services: Services,
    questions: list[tuple[str, int, list[str]]],
    doc_index: dict[str, int],
    rerank_sample: list[int],
) -> dict[str, Any]:
    embedder, coll = services.embedder, services.default_collection
    started = time.perf_counter()
    q_vecs = embedder.encode([q for q, _, _ in questions], batch_size=128)
    hits = coll.index.search(q_vecs, 20)
    search_s = time.perf_counter() - started
    chunk_doc = {
        c.id: doc_index[c.document_id]
        for c in coll.store.get_chunks(coll.store.chunk_ids().tolist())
    }
    found = {1: 0, 5: 0, 20: 0}
    for (_, gold, _), row in zip(questions, hits, strict=True):
        docs = [chunk_doc[h.chunk_id] for h in row]
        for k in found:
            found[k] += gold in docs[:k]
    out: dict[str, Any] = {
        "questions": len(questions),
        **{f"recall@{k}": round(v / len(questions), 4) for k, v in found.items()},
        "embed_and_search_s": round(search_s, 1),
    }
    # Rerank the 20 candidates as /ask does (SIEVE_RERANK: fused, blend or pruner).
    r_found = {1: 0, 5: 0}
    for qi in rerank_sample:
        question, gold, _ = questions[qi]
        chunks = coll.store.get_chunks([h.chunk_id for h in hits[qi]])
        texts = [[s.text for s in c.sentences] for c in chunks]
        # the model's scores, as /ask orders them (the sentence blend refines after ordering)
        pruner = services.pruner
        raw = isinstance(pruner, BlendedPruner)
        scored = pruner.raw(question, texts) if raw else pruner.process(question, texts)
        order = services.pipeline.order(question, chunks, scored)  # as /ask orders them
        docs = [doc_index[chunks[i].document_id] for i in order]
        for k in r_found:
            r_found[k] += gold in docs[:k]
    out["after_rerank"] = {
        "questions": len(rerank_sample),
        **{f"recall@{k}": round(v / len(rerank_sample), 4) for k, v in r_found.items()},
    }
    # The service's default retrieval: vector + BM25 + graph, fused (documents, first seen)
    h_found = {1: 0, 5: 0, 20: 0}
    for question, gold, _ in questions:
        cands, _ = services.pipeline.retrieval.retrieve(question, "hybrid", 20)
        docs = list(dict.fromkeys(doc_index[c.chunk.document_id] for c in cands if c.chunk.id > 0))
        for k in h_found:
            h_found[k] += gold in docs[:k]
    out["hybrid"] = {
        "questions": len(questions),
        **{f"recall@{k}": round(v / len(questions), 4) for k, v in h_found.items()},
    }
    return out


def ask_in_process(
    services: Services, questions: list[tuple[str, int, list[str]]], sample: list[int]
) -> dict[str, Any]:
    options = services.sieve.default_options()
    stage: dict[str, list[float]] = {s: [] for s in STAGES}
    before, after, cands, kept_answer, topk_answer, abstained = [], [], [], 0, 0, 0
    for qi in sample:
        question, _, answers = questions[qi]
        result = asyncio.run(services.pipeline.ask(question, options))
        unpruned = asyncio.run(
            services.pipeline.ask(question, replace(options, prune_threshold=0.0))
        )
        for s in STAGES:
            if s in result.timings_ms:
                stage[s].append(result.timings_ms[s])
        before.append(result.tokens_before)
        after.append(result.tokens_after)
        cands.append(result.tokens_candidates)
        abstained += result.abstained
        kept_answer += any(a in result.context for a in answers)
        topk_answer += any(a in unpruned.context for a in answers)
    n = len(sample)
    return {
        "questions": n,
        "latency_ms": {s: percentiles(v) for s, v in stage.items() if v},
        "tokens_candidates_mean": round(float(np.mean(cands)), 1),
        "tokens_before_mean": round(float(np.mean(before)), 1),
        "tokens_after_mean": round(float(np.mean(after)), 1),
        "compression": round(1 - float(np.sum(after)) / float(np.sum(before)), 4),
        "answer_in_unpruned_context": round(topk_answer / n, 4),
        "answer_in_pruned_context": round(kept_answer / n, 4),
        "abstained": round(abstained / n, 4),
        "threshold": services.pruner.default_threshold,
        "top_k": options.top_k,
        "candidates": options.candidates,
        "max_context_tokens": options.max_context_tokens,
    }


def ask_over_http(
    settings: Settings, questions: list[tuple[str, int, list[str]]], sample: list[int]
) -> dict[str, Any]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "SIEVE_DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1",
        "SIEVE_PRUNER": settings.pruner,
    }
    if settings.pruner_path:
        env["SIEVE_PRUNER_PATH"] = str(settings.pruner_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.time() + 120
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.5)
        client_ms: list[float] = []
        server: dict[str, list[float]] = {s: [] for s in STAGES}
        for qi in sample:
            t0 = time.perf_counter()
            r = client.post("/ask", json={"question": questions[qi][0]})
            client_ms.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            for s, v in r.json()["stats"]["timings_ms"].items():
                server.setdefault(s, []).append(v)
        return {
            "questions": len(sample),
            "client_latency_ms": percentiles(client_ms),
            "server_stage_ms": {s: percentiles(v) for s, v in server.items() if v},
        }
    finally:
        proc.terminate()
        proc.wait(30)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    lat = result["ask_in_process"]["latency_ms"]
    names = [s for s in STAGES if s in lat and s != "total"]
    a.bar(names, [lat[s]["p50"] for s in names], label="p50")
    a.bar(
        names,
        [lat[s]["p95"] - lat[s]["p50"] for s in names],
        bottom=[lat[s]["p50"] for s in names],
        alpha=0.5,
        label="p95",
    )
    a.set_ylabel("ms")
    a.set_title(f"/ask stages in-process (total p50 {lat['total']['p50']:.0f} ms)")
    a.tick_params(axis="x", rotation=30)
    a.legend()
    r = result["retrieval"]
    ks = ["recall@1", "recall@5", "recall@20"]
    b.bar(ks, [r[k] for k in ks], label="vector search")
    rr = r["after_rerank"]
    label = f"+ {result['pruner']} rerank, {result.get('rerank', 'pruner')} order"
    b.bar(["rerank@1", "rerank@5"], [rr["recall@1"], rr["recall@5"]], label=label)
    b.set_ylim(0, 1)
    b.set_title(f"SQuAD v1.1 dev ({r['questions']} questions): gold paragraph recall")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ask-sample", type=int, default=300)
    parser.add_argument("--http-sample", type=int, default=200)
    parser.add_argument("--rerank-sample", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64, help="documents per ingest call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pruner",
        choices=["similarity", "provence"],
        default=None,
        help="default: the service's default pruner",
    )
    parser.add_argument("--pruner-path", default=None, help="checkpoint dir (provence)")
    parser.add_argument(
        "--dev-articles",
        action="store_true",
        help="questions of the pruner's dev-split articles only (always for provence)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pruner = args.pruner or Settings(_env_file=None).pruner  # type: ignore[call-arg]
    dev_only = args.dev_articles or pruner == "provence"
    paragraphs, questions = load_squad(dev_only)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            data_dir=Path(tmp) / "data",
            pruner=pruner,
            pruner_path=args.pruner_path,
            _env_file=None,
        )
        t0 = time.perf_counter()
        services = Services.build(settings)  # the embedder in the precision auto picks
        startup_s = time.perf_counter() - t0
        doc_ids, ingest_stats = ingest(services.default_collection, paragraphs, args.batch)
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        print("ingest", ingest_stats, flush=True)
        rerank_sample = rng.sample(range(len(questions)), min(args.rerank_sample, len(questions)))
        retrieval_stats = retrieval(services, questions, doc_index, rerank_sample)
        print("retrieval", retrieval_stats, flush=True)
        asyncio.run(services.aclose())
        t0 = time.perf_counter()
        services = Services.build(settings, services.embedder)  # cold caches, reopened index
        reopen_s = time.perf_counter() - t0
        ask_sample = rng.sample(range(len(questions)), min(args.ask_sample, len(questions)))
        ask_stats = ask_in_process(services, questions, ask_sample)
        print("ask", ask_stats, flush=True)
        asyncio.run(services.aclose())
        http_sample = rng.sample(range(len(questions)), min(args.http_sample, len(questions)))
        http_stats = ask_over_http(settings, questions, http_sample)
        print("http", http_stats, flush=True)
    result = {
        "dataset": "SQuAD v1.1 dev (2,067 paragraphs as documents, 10,570 questions)",
        "questions": "pruner dev-split articles only" if dev_only else "all",
        "question_count": len(questions),
        "pruner": pruner,
        "rerank": settings.rerank,
        "llm": "extractive",
        "index": "flat",
        "startup_s": round(startup_s, 1),
        "reopen_s": round(reopen_s, 2),
        "ingest": ingest_stats,
        "retrieval": retrieval_stats,
        "ask_in_process": ask_stats,
        "ask_http": http_stats,
        "seed": args.seed,
        "machine": machine(),
    }
    name = f"squad_{pruner}" + ("_dev" if dev_only and pruner != "provence" else "")
    write_json(name, result)
    plot(result, RESULTS / f"{name}.png")
    print(f"wrote {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
