"""Graph search latency and memory on a ~100k-node knowledge graph (CPU).

    python -m bench.graph_scale                   # 23k chunks → ~100k nodes (~5 min)
    python -m bench.graph_scale --chunks 2000     # a quick look

The corpus is synthetic (no data set is needed): chunks of sentences naming people, places and
organisations drawn from a Zipf distribution over a large pool of generated names, so a few
entities are hubs and most are rare, as in real documents. Entity names are embedded with the
real MiniLM. Questions name one or two entities (some misspelt, which exercises the embedding
link). Measured: graph ingest ms per chunk, the graph's memory (RSS delta) and node / edge
counts, and GraphRetriever.search latency (link + subgraph + PageRank) p50 / p95 / p99 with
semantic pruning on (the service default) and off. Writes bench/results/graph_scale.json + .png.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, machine, percentiles, write_json
from bench.multihop import rss_mb
from graph import GraphChunk, GraphRetriever, KnowledgeGraph
from index import CachedEncoder, Embedder

_ONSETS = str.split("b br c ch d dr f g gr h j k kr l m n p pr r s sh st t tr v w z")
_VOWELS = str.split("a e i o u ai ea io ou")
_CODAS = str.split("n r s l m nd rt sh th x k")
_KINDS = ["Institute", "Company", "River", "University", "Museum", "Festival", "Party", "Club"]


def _word(rng: random.Random) -> str:
    syllables = rng.choice([2, 2, 3])
    w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return (w + rng.choice(_CODAS)).capitalize()


def names(n: int, rng: random.Random) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < n:
        r = rng.random()
        if r < 0.6:
            name = f"{_word(rng)} {_word(rng)}"
        elif r < 0.85:
            name = f"{_word(rng)} {rng.choice(_KINDS)}"
        else:
            name = _word(rng)
        out[name] = None
    return list(out)


def corpus(n_chunks: int, n_names: int, seed: int) -> tuple[list[GraphChunk], list[str]]:
    rng = random.Random(seed)
    pool = names(n_names, rng)
    weights = 1.0 / np.arange(1, n_names + 1) ** 0.8  # Zipf-like: a few hubs, a long tail
    weights /= weights.sum()
    np_rng = np.random.default_rng(seed)
    chunks = []
    verbs = ["met", "worked with", "visited", "founded", "wrote about", "left"]
    for cid in range(1, n_chunks + 1):
        sentences = []
        for _ in range(4):
            a, b = np_rng.choice(n_names, size=2, p=weights)
            year = rng.randint(1800, 2020)
            sentences.append(f"In {year} {pool[a]} {rng.choice(verbs)} {pool[b]} again.")
        doc = (cid - 1) // 2
        chunks.append(
            GraphChunk(
                cid, f"doc{doc}", pool[doc % n_names], (f"Part {cid % 2}",), tuple(sentences)
            )
        )
    return chunks, pool


def questions(pool: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    out = []
    for i in range(n):
        a = pool[int(rng.paretovariate(0.6)) % len(pool)] if i % 2 else rng.choice(pool)
        if i % 5 == 0:  # misspelt: only the embedding link can find it
            a = a[:-1] + ("x" if a[-1] != "x" else "y")
        b = rng.choice(pool)
        out.append(
            f"Whom did {a} meet after visiting {b}?" if i % 3 else f"Where did {a} go in 1990?"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=23_000)
    parser.add_argument("--names", type=int, default=60_000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256, help="chunks per graph.add call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="graph_scale")
    args = parser.parse_args()

    embedder = Embedder().load()
    chunks, pool = corpus(args.chunks, args.names, args.seed)
    kg = KnowledgeGraph(embedder.encode)
    started = time.perf_counter()
    for i in range(0, len(chunks), args.batch):
        kg.add(chunks[i : i + args.batch])
        if i // args.batch % 10 == 0:
            print(f"added {i + args.batch}/{len(chunks)} chunks, {len(kg.g)} nodes", flush=True)
    ingest_s = time.perf_counter() - started
    # memory: load the saved graph afresh (the RSS of building it includes MiniLM's buffers)
    with tempfile.TemporaryDirectory() as tmp:
        kg.save(Path(tmp) / "graph.npz")
        file_mb = (Path(tmp) / "graph.npz").stat().st_size / 2**20
        del kg
        gc.collect()
        rss0 = rss_mb()
        kg = KnowledgeGraph.load(Path(tmp) / "graph.npz", embedder.encode)
        gc.collect()
        graph_mb = rss_mb() - rss0
        kg.adjacency()
        gc.collect()
        adjacency_mb = rss_mb() - rss0 - graph_mb
    kinds: dict[str, int] = {}
    for _, data in kg.g.nodes(data=True):
        kinds[data["kind"]] = kinds.get(data["kind"], 0) + 1
    size = {
        "nodes": kg.g.number_of_nodes(),
        "edges": kg.g.number_of_edges(),
        "nodes_by_kind": kinds,
        "aliases": len(kg.aliases),
        "file_mb": round(file_mb, 1),
        "rss_mb": round(graph_mb, 1),
        "rss_mb_per_10k_chunks": round(graph_mb * 10_000 / len(chunks), 1),
        "adjacency_cache_mb": round(adjacency_mb, 1),
    }
    ingest = {
        "chunks": len(chunks),
        "seconds": round(ingest_s, 1),
        "ms_per_chunk": round(ingest_s * 1000 / len(chunks), 2),
    }
    print("graph", size, ingest, flush=True)

    kg.version += 1  # time one rebuild of the cached adjacency (after any change)
    t = time.perf_counter()
    kg.adjacency()
    ingest["adjacency_rebuild_ms"] = round((time.perf_counter() - t) * 1000, 1)
    qs = questions(pool, args.questions, args.seed)
    # as in the pipeline: the question and its unmatched mentions are embedded in one batch
    # (the embed stage, shared with vector search), the mentions served to linking from the cache
    encode = CachedEncoder(embedder.encode)
    vectors = np.stack([encode([q, *GraphRetriever(kg).mentions_to_embed(q)])[0] for q in qs])
    latency: dict[str, Any] = {}
    for label, prune in (("pruning on (default)", 0.1), ("pruning off", -1.0)):
        retriever = GraphRetriever(kg, prune_threshold=prune, encode=encode)
        retriever.search(qs[0], vectors[0], 20)  # warm-up (builds nothing: adjacency cached)
        total, stages, nodes, found = [], {}, [], 0
        for q, v in zip(qs, vectors, strict=True):
            t = time.perf_counter()
            result = retriever.search(q, v, 20)
            total.append((time.perf_counter() - t) * 1000)
            for stage, ms in result.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            nodes.append(int(result.subgraph.get("nodes", 0)))  # type: ignore[call-overload]
            found += bool(result.chunks)
        latency[label] = {
            "search_ms": percentiles(total),
            "stages_ms": {s: percentiles(v) for s, v in stages.items()},
            "subgraph_nodes": percentiles([float(n) for n in nodes]),
            "questions_with_results": found,
        }
        print(label, latency[label]["search_ms"], flush=True)
    result = {
        "benchmark": "graph search at scale (synthetic corpus)",
        "machine": machine(),
        "config": vars(args),
        "graph": size,
        "ingest": ingest,
        "latency": latency,
        "budget": "graph search <= 50 ms p95 on a 100k-node graph (CPU)",
    }
    path = write_json(args.name, result)
    plot(result, RESULTS / f"{args.name}.png")
    print(f"wrote {path}")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = list(result["latency"])
    for j, pct in enumerate(("p50", "p95", "p99")):
        values = [result["latency"][lab]["search_ms"][pct] for lab in labels]
        xs = np.arange(len(labels)) + j * 0.25
        ax.bar(xs, values, 0.25, label=pct)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(50, color="red", linestyle="--", linewidth=1, label="budget (p95)")
    ax.set_xticks(np.arange(len(labels)) + 0.25, labels)
    ax.set_ylabel("ms per graph search")
    ax.set_title(f"Graph search, {result['graph']['nodes']:,} nodes, CPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
