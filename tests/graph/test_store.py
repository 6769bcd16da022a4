"""The knowledge graph store: resolution, persistence, exact removal of a chunk's contribution."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import GraphChunk, KnowledgeGraph, Triple
from index import Embedder


def chunk(
    cid: int, doc: str, title: str, *sentences: str, heading: tuple[str, ...] = ()
) -> GraphChunk:
    return GraphChunk(cid, doc, title, heading, tuple(sentences))


CORPUS = [
    chunk(
        1,
        "d1",
        "Ed Wood (film)",
        "Ed Wood is a 1994 film directed by Tim Burton.",
        "It stars Johnny Depp.",
    ),
    chunk(2, "d2", "Tim Burton", "Tim Burton studied at the California Institute of the Arts."),
    chunk(
        3,
        "d3",
        "Doctor Strange",
        "Doctor Strange is a 2016 film directed by Scott Derrickson.",
        heading=("Production",),
    ),
    chunk(
        4,
        "d3",
        "Doctor Strange",
        "Scott Derrickson attended Biola University.",
        heading=("Production",),
    ),
]


def entities(kg: KnowledgeGraph) -> set[str]:
    return {n[2:] for n in kg.g if n.startswith("e:")}


def assert_consistent(kg: KnowledgeGraph) -> None:
    """No orphans: every entity is supported by a chunk/section/document, every section and
    document still holds a chunk, and every chunk node has its record."""
    for node, data in kg.g.nodes(data=True):
        neighbours = list(kg.g[node])
        if node.startswith("e:"):
            assert any(not n.startswith("e:") for n in neighbours), node
        elif data["kind"] in {"section", "document"}:
            assert any(kg.g.nodes[n]["kind"] in {"chunk", "section"} for n in neighbours), node
        elif data["kind"] == "chunk":
            assert int(node[2:]) in kg.records
    assert set(kg.vectors) <= entities(kg)
    assert kg.entity_count == len(entities(kg))
    assert all(c in entities(kg) for c in kg.aliases.values())


@pytest.fixture
def kg(embedder: Embedder) -> KnowledgeGraph:
    graph = KnowledgeGraph(embedder.encode)
    graph.add(CORPUS)
    return graph


def test_layers_and_edges(kg: KnowledgeGraph) -> None:
    g = kg.g
    assert g.has_edge("d:d3", "s:d3:Production") and g.has_edge("s:d3:Production", "c:3")
    assert g.has_edge("d:d1", "c:1")  # no heading: the chunk hangs off its document
    assert g["c:1"]["e:tim burton"]["mentions"] == 1
    assert g["e:ed wood"]["e:tim burton"]["cooc"] == 1  # same sentence
    assert not g.has_edge("e:ed wood", "e:johnny depp")  # different sentences
    assert g.has_edge("d:d1", "e:ed wood")  # the document title is an entity
    assert g.has_edge("s:d3:Production", "e:production")  # so is the section heading
    assert_consistent(kg)


def test_resolution_merges_a_short_form_and_keeps_distinct_names_apart(embedder: Embedder) -> None:
    kg = KnowledgeGraph(embedder.encode)
    kg.add([chunk(1, "d1", "", "Barack Obama visited the University of Oxford.")])
    kg.add([chunk(2, "d2", "", "Later Obama spoke at the University of Cambridge.")])
    assert kg.aliases.get("obama") == "barack obama"
    assert kg.g["c:2"]["e:barack obama"]["mentions"] == 1
    assert {"university of oxford", "university of cambridge"} <= entities(kg)  # not merged
    kg.remove([1])  # the alias target still lives on through chunk 2
    assert "barack obama" in entities(kg)
    assert_consistent(kg)


def test_unsure_pairs_get_a_synonym_edge_instead_of_a_merge(embedder: Embedder) -> None:
    kg = KnowledgeGraph(embedder.encode, merge_threshold=0.99, synonym_threshold=0.85)
    kg.add([chunk(1, "d1", "", "Marvel Studios made it.")])
    kg.add([chunk(2, "d2", "", "Marvel Entertainment sold it.")])
    assert "marvel entertainment" in entities(kg) and not kg.aliases
    assert kg.g["e:marvel entertainment"]["e:marvel studios"]["synonym"] >= 0.85


def test_save_load_round_trip(kg: KnowledgeGraph, tmp_path: Path, embedder: Embedder) -> None:
    kg.add(
        [chunk(9, "d9", "", "Ada Lovelace worked with Charles Babbage.")],
        {9: [Triple("Ada Lovelace", "worked with", "Charles Babbage")]},
    )
    path = tmp_path / "graph.npz"
    kg.save(path)
    loaded = KnowledgeGraph.load(path, embedder.encode)
    assert sorted(loaded.g.nodes(data=True)) == sorted(kg.g.nodes(data=True))
    assert sorted(loaded.g.edges(data=True)) == sorted(kg.g.edges(data=True))
    assert loaded.aliases == kg.aliases and set(loaded.vectors) == set(kg.vectors)
    assert loaded.g["e:ada lovelace"]["e:charles babbage"]["rel"] == {
        "ada lovelace|worked with|charles babbage": 1
    }


def test_unreadable_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "graph.npz"
    path.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="cannot read graph"):
        KnowledgeGraph.load(path)


def test_deleting_a_document_removes_exactly_its_contribution(kg: KnowledgeGraph) -> None:
    before = entities(kg)
    assert kg.remove_documents(["d2"]) == 1
    gone = before - entities(kg)
    # only d2 mentions the school; Tim Burton lives on through chunk 1
    assert gone == {"california institute of the arts"}
    assert "d:d2" not in kg.g and "c:2" not in kg.g
    assert_consistent(kg)


def test_batch_delete_of_everything_leaves_an_empty_graph(kg: KnowledgeGraph) -> None:
    kg.add(
        [chunk(9, "d9", "", "Ada Lovelace met Charles Babbage.")],
        {9: [Triple("Ada Lovelace", "met", "Charles Babbage")]},
    )
    assert kg.remove_documents(["d1", "d2", "d3", "d9"]) == 5
    assert kg.g.number_of_nodes() == 0 and not kg.records and not kg.vectors and not kg.aliases
    assert kg.entity_count == 0


def test_adding_then_removing_restores_the_graph(kg: KnowledgeGraph) -> None:
    nodes, edges = sorted(kg.g.nodes(data=True)), sorted(kg.g.edges(data=True))
    kg.add([chunk(7, "d1", "Ed Wood (film)", "Tim Burton and Johnny Depp met in 1994.")])
    assert kg.g["e:tim burton"]["e:johnny depp"]["cooc"] == 1
    kg.remove([7])
    assert sorted(kg.g.nodes(data=True)) == nodes
    assert sorted(kg.g.edges(data=True)) == edges


def test_re_adding_a_chunk_replaces_it(kg: KnowledgeGraph) -> None:
    kg.add([chunk(2, "d2", "Tim Burton", "Tim Burton grew up in Burbank.")])
    assert "burbank" in entities(kg) and "california institute of the arts" not in entities(kg)
    assert_consistent(kg)


def test_inspection(kg: KnowledgeGraph) -> None:
    total, rows = kg.find_entities("burton")
    assert total == 1 and rows[0]["key"] == "tim burton" and rows[0]["chunks"] == 3
    hood = kg.neighbourhood("Tim Burton")
    assert hood is not None
    assert {m["chunk_id"] for m in hood["mentioned_in"]} == {1, 2}
    assert "ed wood" in {n["entity"]["key"] for n in hood["neighbours"]}
    assert kg.neighbourhood("nobody at all") is None


def test_weak_mentions_count_only_for_known_entities(embedder: Embedder) -> None:
    kg = KnowledgeGraph(embedder.encode)
    kg.add([chunk(1, "d1", "", "Researchers met in Quimper.", "Quimper is small.")])
    assert entities(kg) == {"quimper"}  # "Researchers" opens a sentence and is nowhere else
    assert kg.g["c:1"]["e:quimper"]["mentions"] == 2
