"""Knowledge graph: entity extraction, the graph store and subgraph retrieval."""

from graph.extract import Mention, extract, normalise
from graph.retrieve import GraphRetriever, GraphSearchResult, Seed
from graph.store import Contribution, GraphChunk, KnowledgeGraph, Triple

__all__ = [
    "Contribution",
    "GraphChunk",
    "GraphRetriever",
    "GraphSearchResult",
    "KnowledgeGraph",
    "Mention",
    "Seed",
    "Triple",
    "extract",
    "normalise",
]
