"""Subgraph retrieval: linking and personalised PageRank on small hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest

from graph import GraphChunk, GraphRetriever, KnowledgeGraph, Triple
from index import Embedder

DOCS = [
    ("Nightfall Harbor", "Nightfall Harbor is a 1998 thriller directed by Orla Venkatesan."),
    ("Orla Venkatesan", "Orla Venkatesan studied at the Brevik Institute of Arts."),
    ("Grey Meadow", "Grey Meadow is a 2003 drama directed by Tomas Ekdahl."),
    ("Tomas Ekdahl", "Tomas Ekdahl studied at the Lund Film School."),
    ("Brevik Institute of Arts", "The Brevik Institute of Arts was founded in 1921 in Bergen."),
]


@pytest.fixture
def retriever(embedder: Embedder) -> GraphRetriever:
    kg = KnowledgeGraph(embedder.encode)
    kg.add([GraphChunk(i, f"d{i}", t, (), (s,)) for i, (t, s) in enumerate(DOCS, 1)])
    return GraphRetriever(kg)


def test_ppr_reaches_the_bridge_chunk(retriever: GraphRetriever, embedder: Embedder) -> None:
    q = "Which school did the director of Nightfall Harbor attend?"
    result = retriever.search(q, embedder.encode([q])[0], 3)
    ids = [cid for cid, _ in result.chunks]
    assert ids[:2] == [1, 2]  # the film, then its director's chunk (the second hop)
    assert 3 not in ids and 4 not in ids  # the other film's chain is not reached
    assert [s.key for s in result.seeds] == ["nightfall harbor"]
    assert result.facts == []  # no typed relations: co-mentions are not phrased as facts
    assert set(result.timings_ms) == {"link", "subgraph", "pagerank"}
    scores = [s for _, s in result.chunks]
    assert scores == sorted(scores, reverse=True)


def test_lower_case_questions_link_by_ngrams(retriever: GraphRetriever) -> None:
    seeds = retriever.link("where did orla venkatesan study")
    assert [(s.key, s.how) for s in seeds] == [("orla venkatesan", "ngram")]


def test_misspelt_names_link_by_embedding(retriever: GraphRetriever) -> None:
    seeds = retriever.link("Who founded the Brevik Institute of Art?")
    assert seeds and seeds[0].key == "brevik institute of arts"


def test_rare_seeds_weigh_more(embedder: Embedder) -> None:
    kg = KnowledgeGraph(embedder.encode)
    kg.add(
        [
            GraphChunk(i, f"d{i}", "", (), (f"The event in Paris was number {i}.",))
            for i in range(1, 5)
        ]
        + [GraphChunk(9, "d9", "", (), ("Both Paris and Quimper are in France.",))]
    )
    seeds = {s.key: s.weight for s in GraphRetriever(kg).link("Paris or Quimper?")}
    assert seeds["quimper"] > seeds["paris"]


def test_no_entities_no_results(retriever: GraphRetriever) -> None:
    result = retriever.search("what is this about", None, 5)
    assert result.chunks == [] and result.seeds == [] and result.facts == []


def test_node_budget_bounds_the_subgraph(embedder: Embedder) -> None:
    kg = KnowledgeGraph(None)  # exact linking only
    kg.add(
        [GraphChunk(i, f"d{i}", "", (), (f"Hub Town met Person Number{i}.",)) for i in range(200)]
    )
    r = GraphRetriever(kg, max_nodes=50)
    result = r.search("Tell me about Hub Town", None, 500)
    assert result.subgraph["nodes"] <= 50
    assert 0 < len(result.chunks) < 50
    assert np.isclose(sum(s for _, s in result.chunks), sum(s for _, s in result.chunks))


def test_mentions_to_embed_are_the_unmatched_ones(retriever: GraphRetriever) -> None:
    q = "Did Orla Venkatesan found the Brevik Institute of Art?"
    assert retriever.mentions_to_embed(q) == ["Brevik Institute of Art"]


def test_typed_relations_become_graph_facts(embedder: Embedder) -> None:
    kg = KnowledgeGraph(embedder.encode)
    kg.add(
        [GraphChunk(1, "d1", "", (), ("Ada Lovelace worked with Charles Babbage in London.",))],
        {1: [Triple("Ada Lovelace", "worked with", "Charles Babbage")]},
    )
    q = "Who did Ada Lovelace work with?"
    result = GraphRetriever(kg).search(q, embedder.encode([q])[0], 5)
    assert result.facts == ["Ada Lovelace worked with Charles Babbage."]
    assert GraphRetriever(kg, facts=0).search(q, None, 5).facts == []
