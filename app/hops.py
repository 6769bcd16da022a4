"""The hops of a question: the pipeline's stage that runs app/chain.py's steps over the
candidates (retrieve again, prune again, accept, order), bounded by :class:`HopLimits`.

``Hops.run`` takes the first pass's :class:`Passes` and returns them with what the hops added
(appended candidates, links, a per-hop trace for ``explain``). The pipeline owns the models and
indexes; this stage gets what it calls as plain callables.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.answers import AskOptions
from app.chain import (
    Bridge,
    HopLimits,
    Link,
    chain_order,
    evidence,
    find_bridges,
    hop_query,
    may_name,
    named_bridge,
)
from app.follow_up import FollowUp
from app.fusion import Candidate
from app.retrieval_modes import retrievers_of
from graph import GraphRetriever
from index import ChunkRecord
from pruner import BlendedPruner, PrunedContext, Pruner

GRAPH_FACTS_ID = -1  # chunk id of the graph-facts pseudo-passage
FollowUpFn = Callable[[str, list[str]], FollowUp]  # (question, evidence) -> the LLM's follow-up
# (query, retrievers, k, collection, query vector or None, chunk ids to skip) -> fused candidates
Retrieve = Callable[
    [str, Sequence[str], int, str, np.ndarray | None, Collection[int]], list[Candidate]
]


@dataclass(frozen=True)
class Passes:
    """The candidates and what the pruner made of them, as the hops leave them."""

    fused: list[Candidate]
    texts: list[list[str]]  # each candidate's sentences
    pruned: list[PrunedContext]
    order: list[int]  # candidate positions, best first (chains kept together)
    refined: set[int] | None  # positions a blended pruner has decided (None: all of them)
    links: dict[int, Link] = field(default_factory=dict)  # position -> how a later hop found it
    trace: list[dict[str, object]] = field(default_factory=list)  # per hop, for explain


def hop_retrievers(mode: str) -> tuple[str, ...]:
    """What a hop searches for a request's retrieval mode: the mode's retrievers without vector
    search (BM25 and the graph read the bridge names), vector search alone in vector mode."""
    return tuple(r for r in retrievers_of(mode) if r != "vector") or ("vector",)


def context_positions(
    order: Sequence[int], pruned: Sequence[PrunedContext], top_k: int
) -> set[int]:
    """The positions the context would take before the budget: the first ``top_k`` in order
    that keep a sentence."""
    return set([i for i in order if pruned[i].kept][:top_k])


@dataclass
class _Work:
    """The hops' working copy of :class:`Passes`."""

    fused: list[Candidate]
    texts: list[list[str]]
    pruned: list[PrunedContext]
    order: list[int]
    refined: set[int] | None
    links: dict[int, Link]

    def add(self, candidate: Candidate, texts: list[str], result: PrunedContext) -> int:
        """A new candidate joins the list; its position."""
        self.fused.append(candidate)
        self.texts.append(texts)
        self.pruned.append(result)
        self.order.append(len(self.fused) - 1)
        return len(self.fused) - 1


class Hops:
    def __init__(
        self,
        pruner: Pruner,
        graph: Callable[[str], GraphRetriever],
        retrieve: Retrieve,
        title: Callable[[ChunkRecord], str],
        encode: Callable[[Sequence[str]], np.ndarray],
        limits: HopLimits,
    ) -> None:
        self.pruner = pruner
        self.graph = graph
        self.retrieve = retrieve
        self.title = title
        self.encode = encode
        self.limits = limits

    def run(
        self,
        question: str,
        options: AskOptions,
        p: Passes,
        follow_up: FollowUpFn | None = None,
    ) -> Passes:
        """Up to ``options.hops`` more hops (app/chain.py): bridge entities of the evidence →
        retrieve again with the question and their names (and the LLM's follow-up query when
        ``follow_up`` is given, app/follow_up.py) → prune what is not in the context yet and
        names a bridge, with that query → accept the passages that name a bridge, each after
        the passage that led to it."""
        w = _Work(
            list(p.fused),
            list(p.texts),
            list(p.pruned),
            list(p.order),
            None if p.refined is None else set(p.refined),
            dict(p.links),
        )
        graph = self.graph(options.collection)
        seen: set[str] = set()
        trace: list[dict[str, object]] = []
        previous: list[int] | None = None
        for hop in range(1, options.hops + 1):
            limits = self.limits
            found = evidence(
                w.texts,
                w.pruned,
                w.order,
                previous,
                limits.evidence_passages,
                limits.evidence_sentences,
            )
            relevance = self._relevance(question, graph)
            bridges = (
                find_bridges(graph, question, found, limits.bridges, seen, relevance)
                if found
                else []
            )
            if not bridges:
                break
            seen.update(b.key for b in bridges)
            asked = follow_up(question, [t for _, ts in found for t in ts]) if follow_up else None
            if asked is not None and asked.how == "answered":
                trace.append({"hop": hop, "follow_up": None, "follow_up_by": "answered"})
                break  # the model says the evidence answers: no hop
            query = hop_query(question, bridges, asked.query if asked else None)
            accepted, counts = self._hop(hop, question, query, options, w, graph, bridges)
            w.order = chain_order(w.order, w.links, limits.per_source)
            trace.append(
                {
                    "hop": hop,
                    "bridges": [
                        {"entity": b.name, "from_chunk_id": w.fused[b.source].chunk.id}
                        for b in bridges
                    ],
                    "follow_up": asked.query if asked else None,
                    "follow_up_by": asked.how if asked else None,
                    **counts,
                    "added_chunk_ids": [w.fused[i].chunk.id for i in accepted],
                }
            )
            if not accepted:
                break
            previous = accepted
        return Passes(w.fused, w.texts, w.pruned, w.order, w.refined, w.links, trace)

    def _relevance(
        self, question: str, graph: GraphRetriever
    ) -> Callable[[Sequence[Bridge]], list[float]]:
        def relevance(bridges: Sequence[Bridge]) -> list[float]:
            """Cosine of each bridge's name and the question: the name vectors the graph stored
            at ingestion, only the names it has none for are embedded (with the question,
            whose vector the cached encoder has from retrieval)."""
            stored = graph.name_vectors([b.key for b in bridges])
            missing = list(dict.fromkeys(b.name for b in bridges if b.key not in stored))
            vectors = self.encode([question, *missing])
            embedded = dict(zip(missing, vectors[1:], strict=True))
            return [
                float((stored[b.key] if b.key in stored else embedded[b.name]) @ vectors[0])
                for b in bridges
            ]

        return relevance

    def _hop(
        self,
        hop: int,
        question: str,
        query: str,
        options: AskOptions,
        w: _Work,
        graph: GraphRetriever,
        bridges: list[Bridge],
    ) -> tuple[list[int], dict[str, object]]:
        """One hop over ``w``: link what the context already has, prune again what may name a
        bridge, accept what does. The accepted positions and the trace's counts."""
        titles_of: dict[int, str] = {}  # each chunk's title read once (a document lookup)

        def title(chunk: ChunkRecord) -> str:
            if chunk.id not in titles_of:
                titles_of[chunk.id] = self.title(chunk)
            return titles_of[chunk.id]

        known = {c.chunk.id for c in w.fused}
        retrievers = hop_retrievers(options.retrieval)
        # a hop embeds no query of its own unless vector search is all it has: BM25 and the
        # graph's linking read the bridge names in the query text, and the graph walk weighs
        # entities by the question's vector (cached since the first pass); the question's
        # vector search would only find the first pass's chunks again
        vector = self.encode([question])[0] if "graph" in retrievers else None
        more = (
            self.retrieve(
                query, retrievers, self.limits.retrieved, options.collection, vector, known
            )
            if self.limits.retrieved
            else []
        )
        context = context_positions(w.order, w.pruned, options.top_k)
        # a source never follows anything: no cycle can form (A after B after A)
        sources = {b.source for b in bridges} | {link.source for link in w.links.values()}
        for i in sorted(context - set(w.links) - sources):  # already in: moved, not re-pruned
            kept = [w.texts[i][k] for k in w.pruned[i].kept]
            named = named_bridge(graph, [*kept, title(w.fused[i].chunk)], bridges)
            if named is not None:
                w.links[i] = Link(0, named.name, named.source)  # the first pass found it
        # only a passage that names a bridge (text or title) can join: the others are not
        # pruned again at all, which keeps a hop's cost to a few passages
        pool = [
            i
            for i in w.order
            if i not in context
            and i not in w.links
            and i not in sources
            and w.fused[i].chunk.id != GRAPH_FACTS_ID  # the first pass's own summary
            and may_name(bridges, w.texts[i], title(w.fused[i].chunk))
        ][: self.limits.rescored]
        new = [
            c
            for c in more
            if c.chunk.id not in known
            and c.chunk.id != GRAPH_FACTS_ID
            and may_name(bridges, [s.text for s in c.chunk.sentences], title(c.chunk))
        ]
        texts = [w.texts[i] for i in pool] + [[s.text for s in c.chunk.sentences] for c in new]
        titles = [title(w.fused[i].chunk) for i in pool] + [title(c.chunk) for c in new]
        rescored = self._prune_again(query, texts, titles, graph, bridges, options)
        accepted: list[int] = []
        for j, result in enumerate(rescored):
            chunk = w.fused[pool[j]].chunk if j < len(pool) else new[j - len(pool)].chunk
            kept = [texts[j][k] for k in result.kept]
            bridge = named_bridge(graph, [*kept, title(chunk)], bridges) if kept else None
            if bridge is None:
                continue
            i = pool[j] if j < len(pool) else w.add(new[j - len(pool)], texts[j], result)
            w.pruned[i] = result
            if w.refined is not None:
                w.refined.add(i)
            w.links[i] = Link(hop, bridge.name, bridge.source)
            accepted.append(i)
        judged = [w.fused[i].chunk.id for i in pool] + [c.chunk.id for c in new]
        return accepted, {
            "new_candidates": len(new),
            "pruned_again": len(texts),
            "pruned_again_chunk_ids": judged,
        }

    def _prune_again(
        self,
        query: str,
        texts: list[list[str]],
        titles: list[str],
        graph: GraphRetriever,
        bridges: list[Bridge],
        options: AskOptions,
    ) -> list[PrunedContext]:
        """``texts`` pruned with the hop's query. A blended pruner's refinement embeds every
        sentence of a passage, most of a hop's cost, so it refines only the passages that could
        be accepted: a sentence the model keeps at ``limits.keep_floor`` names a bridge, or
        the title does while such a sentence is kept. The others keep nothing."""
        pruner = self.pruner
        if not texts:
            return []
        if not isinstance(pruner, BlendedPruner):
            return pruner.process(query, texts, options.prune_threshold, always_select_title=False)
        raw = pruner.raw(query, texts)
        # a request that keeps every sentence (threshold 0) gets every bridge-naming passage
        floor = 0.0 if options.prune_threshold == 0 else self.limits.keep_floor
        picked = []
        for j, result in enumerate(raw):
            likely = [
                s for s, p in zip(texts[j], result.sentence_scores, strict=True) if p >= floor
            ]
            if likely and named_bridge(graph, [*likely, titles[j]], bridges) is not None:
                picked.append(j)
        refined = pruner.refine(query, texts, raw, picked, options.prune_threshold)
        chosen = set(picked)
        return [r if j in chosen else r.nothing_kept() for j, r in enumerate(refined)]
