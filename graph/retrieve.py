"""Subgraph retrieval: link the question's entities, walk a bounded neighbourhood, rank chunks by
personalised PageRank (HippoRAG-style), and phrase the strongest edges as "graph facts".

1. Linking: entity mentions extracted from the question (exact key, then nearest entity name
   embedding above ``link_threshold``) and a dictionary match of the question's word n-grams
   against entity keys (catches lower-case questions). Each seed is weighted by its specificity,
   1 / (chunks mentioning it) ** ``specificity_power``: rare entities say more than common ones.
2. Subgraph: hop by hop from the seeds over every node kind (entities, chunks, sections,
   documents) on a cached sparse transition matrix, up to ``max_depth`` edges and ``max_nodes``
   nodes (each hop keeps the nodes the walk reaches with the most mass). Entities beyond the
   first hop (more than ``keep_depth`` edges from a seed) whose name is dissimilar to the
   question (cosine < ``prune_threshold``) are pruned (DSRAG's semantic pruning). First-hop
   entities are never pruned: a bridge entity's name (the director of the film in the
   question) rarely resembles the question.
3. Personalised PageRank over the subgraph (power iteration on a sparse matrix), restarting at
   the seeds; chunks ranked by their PageRank mass. Typed relations touching the seeds (when an
   LLM extracted them) become a short "graph facts" passage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from graph.adjacency import KIND_CODES, Adjacency
from graph.extract import Mention, extract, normalise
from graph.store import Encoder, KnowledgeGraph, entity_node

BRIDGE_KINDS = frozenset({"name", "acronym", "quoted", "title"})
_WORDS = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)
_STOP = frozenset(
    str.split(
        """a an the of in on at to for from by with and or is are was were be been who whom whose
    what which when where why how did do does that this these those it its as than then there
    their his her he she they we you i me my our your not no yes has have had can could would
    should will shall may might must about into over under between after before during"""
    )
)


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
    damping: float = 0.5  # probability of following an edge (1 − restart)
    iterations: int = 30
    link_threshold: float = 0.8
    prune_threshold: float = 0.1
    keep_depth: int = 2  # seed → chunk → entity: the first hop is kept whatever its name
    specificity_power: float = 1.0
    max_ngram: int = 6
    facts: int = 5
    # name encoder for linking misspelt mentions (default: the graph's); the service passes its
    # cached encoder and embeds these mentions in one batch with the question
    encode: Encoder | None = None

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
            elif _embeddable(m):
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
        encode = kg.encode if self.encode is None else self.encode  # a CachedEncoder has len()
        if unmatched and encode is not None:
            vectors = np.asarray(encode(unmatched), dtype=np.float32)
            for key, sim in kg.nearest_entities(vectors, unmatched):
                if sim >= self.link_threshold:
                    seed(key, "embedding", sim)
        return sorted(found.values(), key=lambda s: -s.weight)

    def mentioned(self, texts: list[str]) -> list[Seed]:
        """Graph entities that ``texts`` name (their extracted names, acronyms and quoted terms
        found by key or alias; no dates or quantities), rarest first: the bridges a passage's
        kept sentences offer to the next hop. Weights as :meth:`link`'s."""
        found: dict[str, Seed] = {}
        with self.graph.lock:
            g, kg = self.graph.g, self.graph
            for m in extract(texts):
                if m.kind not in BRIDGE_KINDS:
                    continue
                key = kg.aliases.get(m.key, m.key)
                node = entity_node(key)
                if node not in g or key in found:
                    continue
                chunks = sum(1 for n in g[node] if not n.startswith("e:")) or 1
                weight = 1.0 / chunks**self.specificity_power
                found[key] = Seed(key, g.nodes[node]["name"], weight, "exact")
        return sorted(found.values(), key=lambda s: -s.weight)

    def name_vectors(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored name vectors of the entities ``keys`` that have one (float32, unit norm:
        the graph embedded them at ingestion); an entity kind that is never embedded (dates,
        acronyms, …) is missing and the caller embeds its name itself."""
        kg = self.graph
        with kg.lock:
            return {k: np.asarray(kg.vectors[k], np.float32) for k in keys if k in kg.vectors}

    def mentions_to_embed(self, question: str) -> list[str]:
        """The question's mentions that :meth:`link` will embed (no exact entity match): a
        caller with a caching encoder embeds them in one batch with the question."""
        kg = self.graph
        with kg.lock:
            return [
                m.text
                for m in extract([question])
                if _embeddable(m) and entity_node(kg.aliases.get(m.key, m.key)) not in kg.g
            ]

    # ---- 2. + 3. subgraph and PageRank ----------------------------------------------------
    def search(self, question: str, query: np.ndarray | None, k: int) -> GraphSearchResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        with self.graph.lock:
            seeds = self.link(question)
            adj = self.graph.adjacency() if seeds else None
        t1 = time.perf_counter()
        timings["link"] = round((t1 - t0) * 1000, 3)
        if adj is None:
            return GraphSearchResult([], [], [], {"nodes": 0}, timings)
        restart = np.zeros(len(adj.nodes))
        for s in seeds:
            restart[adj.index[entity_node(s.key)]] += s.weight
        restart /= restart.sum()
        sub = self._neighbourhood(adj, restart, query)
        t2 = time.perf_counter()
        timings["subgraph"] = round((t2 - t1) * 1000, 3)
        scores = self._pagerank(adj, sub, restart[sub])
        order = np.argsort(-scores, kind="stable")
        kinds = adj.kinds[sub]
        ranked = order[(kinds[order] == KIND_CODES["chunk"]) & (scores[order] > 0)][:k]
        chunks = [(int(adj.nodes[sub[i]][2:]), float(scores[i])) for i in ranked]
        top = order[kinds[order] == KIND_CODES["entity"]][:10]
        with self.graph.lock:
            g = self.graph.g
            mass = {adj.nodes[sub[i]]: float(scores[i]) for i in order[: 20 * self.facts]}
            facts = self._facts(mass, {s.key for s in seeds})
            top_entities = [
                {"name": g.nodes[n]["name"], "score": round(float(scores[i]), 6)}
                for i in top
                if (n := adj.nodes[sub[i]]) in g
            ]
        timings["pagerank"] = round((time.perf_counter() - t2) * 1000, 3)
        subgraph: dict[str, object] = {
            "nodes": len(sub),
            "chunks": int((kinds == KIND_CODES["chunk"]).sum()),
            "entities": int((kinds == KIND_CODES["entity"]).sum()),
            "top_entities": top_entities,
        }
        return GraphSearchResult(chunks, facts, seeds, subgraph, timings)

    def _neighbourhood(
        self, adj: Adjacency, restart: np.ndarray, query: np.ndarray | None
    ) -> np.ndarray:
        """Node indices within ``max_depth`` edges of the seeds, walked hop by hop on the
        sparse matrix (cost: the edges of the nodes reached, not of the graph). Entities past
        ``keep_depth`` whose name is far from the question are pruned, and each hop keeps at
        most ``max_nodes`` nodes: those the walk reaches with the most mass."""
        t = adj.transition
        frontier = np.flatnonzero(restart)
        mass = restart[frontier]
        reached = np.zeros(len(restart), dtype=bool)
        reached[frontier] = True
        count = len(frontier)
        prune = query is not None and self.prune_threshold > -1
        for depth in range(1, self.max_depth + 1):
            room = self.max_nodes - count
            if room <= 0 or not len(frontier):
                break
            # one step of the walk from the frontier, as a sparse sum over its columns
            cols = t[:, frontier]
            weights = cols.data * np.repeat(mass, np.diff(cols.indptr))
            targets, inverse = np.unique(cols.indices, return_inverse=True)
            spread = np.bincount(inverse, weights=weights, minlength=len(targets))
            fresh = ~reached[targets]
            new, spread = targets[fresh], spread[fresh]
            if prune and depth > self.keep_depth and len(new):
                if len(new) > 2 * room:  # only the likely survivors are compared
                    best = np.argpartition(-spread, 2 * room)[: 2 * room]
                    new, spread = new[best], spread[best]
                rows = adj.vector_rows[new]
                entity = (adj.kinds[new] == KIND_CODES["entity"]) & (rows >= 0)
                sims = np.ones(len(new))
                sims[entity] = adj.vectors[rows[entity]] @ query
                keep = sims >= self.prune_threshold
                new, spread = new[keep], spread[keep]
            if len(new) > room:
                best = np.argsort(-spread, kind="stable")[:room]
                new, spread = new[best], spread[best]
            reached[new] = True
            count += len(new)
            frontier, mass = new, spread
        return np.flatnonzero(reached)

    def _pagerank(self, adj: Adjacency, sub: np.ndarray, restart: np.ndarray) -> np.ndarray:
        """Personalised PageRank restricted to the subgraph ``sub`` (power iteration)."""
        m = adj.transition[:, sub].tocsr()[sub]  # column, then row selection: both cheap
        out = np.asarray(m.sum(axis=0)).ravel()  # re-normalise: edges leaving sub are cut
        out[out == 0] = 1.0
        m = sparse.csr_matrix(m @ sparse.diags(1.0 / out))
        p = restart.copy()
        for _ in range(self.iterations):
            nxt = (1 - self.damping) * restart + self.damping * (m @ p)
            done = np.abs(nxt - p).sum() < 1e-6
            p = nxt
            if done:
                break
        return p

    def _facts(self, mass: dict[str, float], seeds: set[str]) -> list[str]:
        """Typed relations (from the LLM extractor) between a seed and an entity with PageRank
        mass, strongest first, as short sentences. Co-mentions and synonym guesses are not
        phrased as facts: "X is mentioned together with Y" tells a reader nothing the passages
        do not, and an extractive answer would quote it."""
        if self.facts <= 0:
            return []
        g = self.graph.g
        ranked: list[tuple[float, str]] = []
        for key in seeds:
            u = entity_node(key)
            if u not in g:
                continue
            for v, data in g[u].items():
                if v not in mass or v[0] != "e":
                    continue
                name_u, name_v = g.nodes[u]["name"], g.nodes[v]["name"]
                for rel, count in (data.get("rel") or {}).items():
                    s, relation, _ = rel.split("|", 2)
                    a, b = (name_u, name_v) if s == key else (name_v, name_u)
                    ranked.append((mass[v] * (1 + count), f"{a} {relation} {b}."))
        ranked.sort(key=lambda x: -x[0])
        return list(dict.fromkeys(text for _, text in ranked))[: self.facts]


def _embeddable(m: Mention) -> bool:
    return m.kind in {"name", "acronym", "quoted"}
