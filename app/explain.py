"""The ``explain`` block of an answer: how the candidates were found, scored and chained."""

from __future__ import annotations

from collections.abc import Callable

from app.hops import Passes
from graph import GraphSearchResult
from index import ChunkRecord


def explain(
    p: Passes, graph: GraphSearchResult | None, title: Callable[[ChunkRecord], str]
) -> dict[str, object]:
    """What ``explain: true`` returns: graph seeds, subgraph, facts, the hops' trace and every
    candidate with its retrievers, scores and the hop that brought it."""
    return {
        "seeds": [
            {"entity": s.name, "key": s.key, "weight": round(s.weight, 6), "linked_by": s.how}
            for s in (graph.seeds if graph else [])
        ],
        "subgraph": graph.subgraph if graph else {},
        "graph_facts": graph.facts if graph else [],
        "hops": p.trace,
        "candidates": [
            {
                "rank": rank,
                "chunk_id": c.chunk.id,
                "document_id": c.chunk.document_id,
                "title": title(c.chunk),
                "heading_path": list(c.chunk.heading_path),
                "fused_score": round(c.fused_score, 6),
                "retrievers": {
                    name: {"rank": r, "score": round(float(score), 6)}
                    for name, (r, score) in c.found_by.items()
                },
                "rerank_score": round(r.rerank_score, 6),
                "kept_sentences": len(r.kept),
                "hop": link.hop if (link := p.links.get(rank - 1)) else 0,
                "bridge": link.bridge if link else None,
                "led_by_chunk_id": p.fused[link.source].chunk.id if link else None,
            }
            for rank, (c, r) in enumerate(zip(p.fused, p.pruned, strict=True), 1)
        ],
    }
