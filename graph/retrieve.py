"""Subgraph retrieval: link the question's entities, walk a bounded neighbourhood, rank chunks by
personalised PageRank (HippoRAG-style), and phrase the strongest edges as "graph facts".

1. Linking: entity mentions extracted from the question (exact key, then nearest entity name
   embedding above ``link_threshold``) and a dictionary match of the question's word n-grams
   against entity keys (catches lower-case questions). Each seed is weighted by its specificity,
   1 / (chunks mentioning it) ** ``specificity_power``: rare entities say more than common ones.
2. Subgraph: breadth-first from the seeds over every node kind (entities, chunks, sections,
   documents) up to ``max_depth`` edges and ``max_nodes`` nodes, at most ``max_fanout``
   neighbours per node. Entities beyond the first hop (more than ``keep_depth`` edges from a
   seed) whose name is dissimilar to the question (cosine < ``prune_threshold``) are pruned
   (DSRAG's semantic pruning). First-hop entities are never pruned: a bridge entity's name
   (the director of the film in the question) rarely resembles the question.
3. Personalised PageRank over the subgraph (power iteration on a sparse matrix), restarting at
   the seeds; chunks ranked by their PageRank mass.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from scipy import sparse

from graph.extract import extract, normalise
from graph.store import KnowledgeGraph, entity_node

_WORDS = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)
_STOP = frozenset(
    str.split(
        """a an the of in on at to for from by with and or is are was were be been who whom whose
    what which when where why how did do does that this these those it its as than then there
    their his her he she they we you i me my our your not no yes has have had can could would
    should will shall may might must about into over under between after before during"""
    )
)
EDGE_WEIGHTS = {"mentions": 1.0, "titles": 1.0, "cooc": 0.5, "rel": 1.0, "synonym": 1.0}
CONTAINS_WEIGHT = 0.5


@dataclass(frozen=True)
class Seed:
    key: str
    name: str
    weight: float
    how: str  # exact | ngram | embedding


@dataclass
class GraphSearchResult:
    chunks: list[tuple[int, float]]  # (chunk id, PageRank mass), best first
    facts: list[str]
    seeds: list[Seed]
    subgraph: dict[str, object]  # nodes, edges, top entities
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class GraphRetriever:
    graph: KnowledgeGraph
    max_depth: int = 4  # entity → chunk → entity → chunk → …
    max_nodes: int = 3000
    max_fanout: int = 100
    damping: float = 0.5  # probability of following an edge (1 − restart)
    iterations: int = 30
    link_threshold: float = 0.8
    prune_threshold: float = 0.1
    keep_depth: int = 2  # seed → chunk → entity: the first hop is kept whatever its name
    specificity_power: float = 1.0
    max_ngram: int = 6
    facts: int = 5

    # ---- 1. linking -----------------------------------------------------------------------
    def link(self, question: str) -> list[Seed]:
        g, kg = self.graph.g, self.graph
        found: dict[str, Seed] = {}

        def seed(key: str, how: str, sim: float = 1.0) -> None:
            key = kg.aliases.get(key, key)
            node = entity_node(key)
            if node not in g or key in found:
                return
            chunks = sum(1 for n in g[node] if not n.startswith("e:")) or 1
            found[key] = Seed(key, g.nodes[node]["name"], sim / chunks**self.specificity_power, how)

        unmatched = []
        for m in extract([question]):
            key = kg.aliases.get(m.key, m.key)
            if entity_node(key) in g:
                seed(key, "exact")
            elif m.kind in {"name", "acronym", "quoted"}:
                unmatched.append(m.text)
        words = _WORDS.findall(question)
        covered: set[int] = set()
        for n in range(min(self.max_ngram, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                span = range(i, i + n)
                if covered.intersection(span):
                    continue
                if n == 1 and (words[i].casefold() in _STOP or len(words[i]) < 3):
                    continue
                key = normalise(" ".join(words[i : i + n]))
                key = kg.aliases.get(key, key)
                if key and entity_node(key) in g:
                    seed(key, "ngram")
                    covered.update(span)
        if unmatched and kg.encode is not None:
            keys, matrix = kg._entity_matrix()
            if len(keys):
                vectors = np.asarray(kg.encode(unmatched), dtype=np.float32)
                sims = vectors @ matrix.T
                for row in sims:
                    i = int(np.argmax(row))
                    if row[i] >= self.link_threshold:
                        seed(keys[i], "embedding", float(row[i]))
        return sorted(found.values(), key=lambda s: -s.weight)

    # ---- 2. + 3. subgraph and PageRank ----------------------------------------------------
    def search(self, question: str, query: np.ndarray | None, k: int) -> GraphSearchResult:
        timings: dict[str, float] = {}
        with self.graph.lock:
            t0 = time.perf_counter()
            seeds = self.link(question)
            t1 = time.perf_counter()
            timings["link"] = round((t1 - t0) * 1000, 3)
            if not seeds:
                return GraphSearchResult([], [], [], {"nodes": 0, "edges": 0}, timings)
            nodes = self._neighbourhood([entity_node(s.key) for s in seeds], query)
            t2 = time.perf_counter()
            timings["subgraph"] = round((t2 - t1) * 1000, 3)
            scores = self._pagerank(nodes, seeds)
            chunks = sorted(
                ((int(n[2:]), float(scores[i])) for i, n in enumerate(nodes) if n[0] == "c"),
                key=lambda x: -x[1],
            )[:k]
            facts = self._facts(nodes, scores, {s.key for s in seeds})
            timings["pagerank"] = round((time.perf_counter() - t2) * 1000, 3)
            top_entities = sorted(
                ((n, float(scores[i])) for i, n in enumerate(nodes) if n[0] == "e"),
                key=lambda x: -x[1],
            )[:10]
            sub = {
                "nodes": len(nodes),
                "chunks": sum(1 for n in nodes if n[0] == "c"),
                "entities": sum(1 for n in nodes if n[0] == "e"),
                "top_entities": [
                    {"name": self.graph.g.nodes[n]["name"], "score": round(s, 6)}
                    for n, s in top_entities
                ],
            }
        return GraphSearchResult(chunks, facts, seeds, sub, timings)

    def _neighbourhood(self, seeds: Sequence[str], query: np.ndarray | None) -> list[str]:
        g, vectors = self.graph.g, self.graph.vectors
        order: dict[str, int] = {s: 0 for s in seeds}
        queue = deque(seeds)
        while queue and len(order) < self.max_nodes:
            node = queue.popleft()
            depth = order[node]
            if depth >= self.max_depth:
                continue
            for nb in islice(g[node], self.max_fanout):
                if nb in order:
                    continue
                if nb[0] == "e" and query is not None and depth + 1 > self.keep_depth:
                    vec = vectors.get(nb[2:])
                    if vec is not None and float(vec @ query) < self.prune_threshold:
                        continue
                order[nb] = depth + 1
                queue.append(nb)
                if len(order) >= self.max_nodes:
                    break
        return list(order)

    def _pagerank(self, nodes: list[str], seeds: Sequence[Seed]) -> np.ndarray:
        g = self.graph.g
        index = {n: i for i, n in enumerate(nodes)}
        rows, cols, vals = [], [], []
        for u in nodes:
            iu = index[u]
            for v, data in g[u].items():
                iv = index.get(v)
                if iv is None:
                    continue
                rows.append(iv)
                cols.append(iu)
                vals.append(_weight(data))
        n = len(nodes)
        m = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float64)
        out = np.asarray(m.sum(axis=0)).ravel()
        out[out == 0] = 1.0
        m = m @ sparse.diags(1.0 / out)  # column-stochastic
        restart = np.zeros(n)
        for s in seeds:
            restart[index[entity_node(s.key)]] = s.weight
        restart /= restart.sum()
        p = restart.copy()
        for _ in range(self.iterations):
            nxt = (1 - self.damping) * restart + self.damping * (m @ p)
            if np.abs(nxt - p).sum() < 1e-8:
                p = nxt
                break
            p = nxt
        return p

    def _facts(self, nodes: list[str], scores: np.ndarray, seeds: set[str]) -> list[str]:
        """The strongest entity–entity edges touching a seed, as short sentences."""
        if self.facts <= 0:
            return []
        g = self.graph.g
        score = {n: float(scores[i]) for i, n in enumerate(nodes) if n[0] == "e"}
        ranked: list[tuple[float, str]] = []
        for key in seeds:
            u = entity_node(key)
            for v, data in g[u].items():
                if v not in score or v == u:
                    continue
                name_u, name_v = g.nodes[u]["name"], g.nodes[v]["name"]
                for rel, count in (data.get("rel") or {}).items():
                    s, relation, _ = rel.split("|", 2)
                    a, b = (name_u, name_v) if s == key else (name_v, name_u)
                    ranked.append((score[v] * (1 + count), f"{a} {relation} {b}."))
                if "synonym" in data:
                    ranked.append((score[v], f"{name_u} may be the same as {name_v}."))
                if data.get("cooc"):
                    ranked.append(
                        (score[v] * 0.5, f"{name_u} is mentioned together with {name_v}.")
                    )
        ranked.sort(key=lambda x: -x[0])
        return list(dict.fromkeys(text for _, text in ranked))[: self.facts]


def _weight(data: dict[str, object]) -> float:
    w = CONTAINS_WEIGHT if data.get("kind") == "contains" else 0.0
    for attr, factor in EDGE_WEIGHTS.items():
        value = data.get(attr)
        if value:
            w += factor * (sum(value.values()) if isinstance(value, dict) else float(value))  # type: ignore[arg-type]
    return w or 1e-6
