"""Hybrid retrieval end to end: the graph finds the second hop that vector search misses;
BM25 and the graph stay in step with SQLite through uploads, deletes, crashes and reopen."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.collection import Collection
from app.collection_config import CollectionConfig
from app.parsing import ParsedDocument, parse_text
from app.pipeline import GRAPH_FACTS_ID, RETRIEVAL_MODES
from app.services import Services
from app.settings import Settings
from index import Embedder

# a two-hop question over a small corpus: the film's chunk names its director, the director's
# chunk names the school; school-themed distractors crowd vector search
TWO_HOP = [
    ("Nightfall Harbor", "Nightfall Harbor is a 1998 thriller directed by Orla Venkatesan."),
    ("Orla Venkatesan", "Orla Venkatesan trained as a painter at the Brevik Institute."),
    ("Greenfield School", "Students attend Greenfield School from the age of eleven."),
    ("Film schools", "Many film directors attended a film school before their first feature."),
    ("School choice", "Which school a director attended shapes the films they make."),
    ("Harbor schools", "The harbor town has two schools that students attend by ferry."),
    ("Directing", "A director of a thriller decides where each scene is shot."),
    ("Nightfall", "Nightfall is the time of day when the sun sets and darkness falls."),
]
QUESTION = "Which school did the director of Nightfall Harbor attend?"


def _parsed(docs: list[tuple[str, str]]) -> list[tuple[ParsedDocument, str]]:
    return [(parse_text(t, x), "json") for t, x in docs]


def _titles(services: Services, mode: str, k: int) -> list[str]:
    cands, _ = services.pipeline.retrieval.retrieve(QUESTION, mode, k)
    out = []
    for c in cands:
        record = services.default_collection.store.get_document(c.chunk.document_id)
        out.append(record.title if record else "(graph facts)")
    return out


@pytest.fixture
def services(settings: Settings, embedder: Embedder) -> Services:
    s = Services.build(settings, embedder)
    s.default_collection.ingest(_parsed(TWO_HOP))
    return s


def test_hybrid_finds_the_second_hop_that_vector_search_misses(services: Services) -> None:
    k = len(TWO_HOP) - 1
    assert "Orla Venkatesan" not in _titles(services, "vector", k)  # ranked last of all
    assert "Orla Venkatesan" not in _titles(services, "lexical", k)  # shares no word
    assert _titles(services, "graph", k)[:2] == ["Nightfall Harbor", "Orla Venkatesan"]
    hybrid = _titles(services, "hybrid", k)
    assert {"Nightfall Harbor", "Orla Venkatesan"} <= set(hybrid)
    assert "(graph facts)" not in hybrid and len(hybrid) == k  # no typed relations here


def test_each_mode_uses_only_its_retrievers(services: Services) -> None:
    for mode in RETRIEVAL_MODES:
        cands, graph = services.pipeline.retrieval.retrieve(QUESTION, mode, 5)
        used = {name for c in cands for name in c.found_by}
        allowed = {"vector", "lexical", "graph"} if mode == "hybrid" else {mode}
        assert used <= allowed | ({"graph_facts"} if "graph" in allowed else set())
        assert (graph is not None) == (mode in {"graph", "hybrid"})
        fused = [c.fused_score for c in cands]
        assert fused == sorted(fused, reverse=True)


def test_delete_removes_the_document_from_bm25_and_the_graph(services: Services) -> None:
    coll = services.default_collection
    orla = next(d for d in coll.store.list_documents() if d.title == "Orla Venkatesan")
    coll.delete(orla.id)
    assert "brevik institute" not in {n[2:] for n in coll.graph.g}
    assert "orla venkatesan" in {n[2:] for n in coll.graph.g}  # still named by the film
    assert np.array_equal(np.sort(coll.lexical.ids()), np.sort(coll.store.chunk_ids()))
    assert np.array_equal(np.sort(coll.graph.chunk_ids()), np.sort(coll.store.chunk_ids()))
    assert all(h.chunk_id != orla.id for h in coll.lexical.search("painter Brevik", 5))
    assert coll.search_lexical("painter Brevik", 5) == []


def test_batch_delete_in_one_pass(services: Services) -> None:
    coll = services.default_collection
    ids = [d.id for d in coll.store.list_documents()]
    coll.delete_many(ids[:5])
    assert coll.store.count_documents() == len(TWO_HOP) - 5
    assert np.array_equal(np.sort(coll.graph.chunk_ids()), np.sort(coll.store.chunk_ids()))
    coll.delete_many(ids[5:])
    assert coll.graph.g.number_of_nodes() == 0 and coll.lexical.ntotal == 0


def test_failed_graph_step_rolls_the_upload_back(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = services.default_collection
    before = (coll.store.count_documents(), coll.lexical.ntotal, len(coll.graph.records))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("graph exploded")

    monkeypatch.setattr(coll.graph, "add", broken)
    with pytest.raises(RuntimeError, match="graph exploded"):
        coll.ingest(_parsed([("New", "Quentin Marsh founded Lowbridge Academy in 1901.")]))
    assert (coll.store.count_documents(), coll.lexical.ntotal, len(coll.graph.records)) == before
    assert coll.index.matches(coll.store.chunk_ids())


def test_missing_or_stale_derived_files_are_rebuilt_at_open(
    settings: Settings, embedder: Embedder
) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    coll.ingest(_parsed(TWO_HOP[:4]))
    coll.close()
    stale_graph = settings.graph_path.read_bytes()  # knows 4 documents
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    coll.ingest(_parsed(TWO_HOP[4:]))
    coll.delete(coll.store.list_documents()[-1].id)  # one of the first four
    coll.close()
    settings.lexical_path.unlink()  # a crash before the first save
    settings.graph_path.write_bytes(stale_graph)  # a file older than the database
    reopened = Collection.open(CollectionConfig.of(settings), embedder)
    stored = np.sort(reopened.store.chunk_ids())
    assert np.array_equal(np.sort(reopened.lexical.ids()), stored)
    assert np.array_equal(np.sort(reopened.graph.chunk_ids()), stored)
    assert reopened.search_lexical("ferry", 1)[0][0].text.startswith("The harbor town")
    settings.graph_path.write_bytes(b"torn write")  # unreadable: rebuilt from SQLite
    assert np.array_equal(
        np.sort(Collection.open(CollectionConfig.of(settings), embedder).graph.chunk_ids()), stored
    )


def test_graph_can_be_switched_off(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(
        CollectionConfig.of(settings.model_copy(update={"graph": False})), embedder
    )
    coll.ingest(_parsed(TWO_HOP))
    assert coll.graph.g.number_of_nodes() == 0 and coll.lexical.ntotal == len(TWO_HOP)


# ---- over HTTP ------------------------------------------------------------------------------
def _upload(client: TestClient) -> None:
    for title, text in TWO_HOP:
        r = client.post("/documents", json={"title": title, "text": text})
        assert r.status_code == 201, r.text


def test_ask_reports_retrievers_and_explains(client: TestClient) -> None:
    _upload(client)
    ask = {"question": QUESTION, "candidates": 7, "top_k": 9}
    vector = client.post("/ask", json={**ask, "retrieval": "vector", "hops": 0}).json()
    assert "Brevik Institute" not in vector["context"]  # one vector pass misses the second hop
    chained = client.post("/ask", json={**ask, "retrieval": "vector", "hops": 1}).json()
    assert "Brevik Institute" in chained["context"]  # the bridge entity leads a hop to it
    r = client.post("/ask", json={**ask, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    stats = body["stats"]
    assert stats["retrieval"] == "hybrid"
    assert set(stats["retrievers"]) == {"vector", "lexical", "graph"}
    assert {"vector_search", "lexical_search", "graph_search", "fuse"} <= set(stats["timings_ms"])
    explain = body["explain"]
    assert explain["seeds"][0]["entity"] == "Nightfall Harbor"
    assert explain["subgraph"]["nodes"] > 0
    cands = explain["candidates"]
    assert [c["rank"] for c in cands] == list(range(1, len(cands) + 1))
    orla = next(c for c in cands if c["title"] == "Orla Venkatesan")
    assert "graph" in orla["retrievers"] and orla["retrievers"]["graph"]["rank"] >= 1
    assert all(c["chunk_id"] != GRAPH_FACTS_ID for c in cands)
    for citation in body["citations"]:
        assert citation["retrievers"], citation
    assert "Brevik Institute" in body["context"]


def test_ask_without_explain_has_none_and_modes_validate(client: TestClient) -> None:
    _upload(client)
    r = client.post("/ask", json={"question": QUESTION, "retrieval": "vector"})
    assert r.status_code == 200 and r.json()["explain"] is None
    assert r.json()["stats"]["retrievers"].keys() == {"vector"}
    bad = client.post("/ask", json={"question": QUESTION, "retrieval": "telepathy"})
    assert bad.status_code == 422 and "retrieval" in bad.text


def test_graph_endpoints(client: TestClient) -> None:
    _upload(client)
    r = client.get("/graph/entities", params={"q": "venkatesan"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1 and body["entities"][0]["key"] == "orla venkatesan"
    hood = client.get("/graph/neighbourhood", params={"entity": "Orla Venkatesan"}).json()
    assert {m["title"] for m in hood["mentioned_in"]} == {"Nightfall Harbor", "Orla Venkatesan"}
    assert "brevik institute" in {n["entity"]["key"] for n in hood["neighbours"]}
    missing = client.get("/graph/neighbourhood", params={"entity": "Nobody Here"})
    assert missing.status_code == 404 and "Nobody Here" in missing.text
    assert client.get("/graph/neighbourhood").status_code == 422
    assert client.get("/graph/entities", params={"limit": 0}).status_code == 422


def test_batch_delete_endpoint_is_all_or_nothing(client: TestClient) -> None:
    _upload(client)
    ids = [d["id"] for d in client.get("/documents").json()["documents"]]
    bad = client.post("/documents/delete", json={"ids": [ids[0], "no-such-id"]})
    assert bad.status_code == 404 and "no-such-id" in bad.text
    assert client.get("/documents").json()["total"] == len(TWO_HOP)  # nothing deleted
    r = client.post("/documents/delete", json={"ids": ids[:3]})
    assert r.status_code == 200 and sorted(r.json()["deleted"]) == sorted(ids[:3])
    assert client.get("/documents").json()["total"] == len(TWO_HOP) - 3
    assert client.post("/documents/delete", json={"ids": []}).status_code == 422
    health = client.get("/healthz").json()
    assert health["graph"]["entities"] > 0 and health["graph"]["triples"] == "off"
