"""The background LLM triple worker against the stub OpenAI-compatible server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.parsing import parse_text
from app.pipeline import GRAPH_FACTS_ID
from app.services import Services
from app.settings import Settings
from index import Embedder
from tests.app.stub_llm import StubServer

TEXT = "Ada Lovelace worked with Charles Babbage in London."


def _triples(body: dict[str, Any]) -> str:
    text = body["messages"][1]["content"]
    if "Babbage" in text:
        triples = [
            {"subject": "Ada Lovelace", "relation": "worked with", "object": "Charles Babbage"}
        ]
        return json.dumps({"triples": triples})
    return "I cannot do that."  # malformed: logged and skipped


@pytest.fixture
def services(settings: Settings, embedder: Embedder, stub_llm: StubServer) -> Iterator[Services]:
    stub_llm.content = _triples
    configured = settings.model_copy(
        update={"graph_triples": "llm", "llm_base_url": stub_llm.base_url, "llm_model": "tiny"}
    )
    s = Services.build(configured, embedder)
    yield s
    stub_llm.content = " In Paris [1]. "
    assert s.triples is not None
    s.triples.close()
    s.default_collection.close()


def test_triples_become_typed_relations_in_the_background(
    services: Services, stub_llm: StubServer
) -> None:
    collection, worker = services.default_collection, services.triples
    assert worker is not None
    before = len(stub_llm.requests)
    collection.ingest(
        [(parse_text("Computing", TEXT), "json"), (parse_text("Other", "Nothing here."), "json")]
    )
    assert worker.wait(10)
    edge = collection.graph.g["e:ada lovelace"]["e:charles babbage"]
    assert edge["rel"] == {"ada lovelace|worked with|charles babbage": 1}
    assert worker.stats["done"] == 1 and worker.stats["failed"] == 1  # the malformed answer
    sent = stub_llm.requests[before]["body"]
    assert sent["response_format"]["type"] == "json_schema" and sent["model"] == "tiny"

    # the same chunk text again (as after a graph rebuild): from the cache, no new request
    calls = len(stub_llm.requests)
    worker.submit(collection, [int(collection.graph.chunk_ids().max())])
    worker.submit(collection, [int(collection.graph.chunk_ids().min())])
    assert worker.wait(10)
    assert worker.stats["cached"] == 1 and len(stub_llm.requests) == calls + 1  # + the malformed
    hood = collection.graph.neighbourhood("Ada Lovelace")
    assert hood is not None
    rels = {r for n in hood["neighbours"] for r in n["relations"]}
    assert rels == {"ada lovelace|worked with|charles babbage"}

    # typed relations touching the question's entities reach the pruner as a facts passage
    cands, _ = services.pipeline.retrieval.retrieve("Who did Ada Lovelace work with?", "hybrid", 5)
    facts = [c for c in cands if c.chunk.id == GRAPH_FACTS_ID]
    assert len(facts) == 1 and facts[0].found_by == {"graph_facts": (1, 1.0)}
    assert facts[0].chunk.text == "Ada Lovelace worked with Charles Babbage."


def test_a_failing_server_is_not_fatal(services: Services, stub_llm: StubServer) -> None:
    stub_llm.status = 500
    try:
        [result] = services.default_collection.ingest([(parse_text("Computing", TEXT), "json")])
        assert services.triples is not None and services.triples.wait(10)
        assert services.triples.stats["failed"] == 1
        assert result.document.chunk_count == 1  # ingestion itself went through
        assert (
            "e:ada lovelace" in services.default_collection.graph.g
        )  # deterministic entities stay
    finally:
        stub_llm.status = 200


def test_deleted_chunks_are_skipped(services: Services, stub_llm: StubServer) -> None:
    stub_llm.delay_s = 0.3
    try:
        [result] = services.default_collection.ingest([(parse_text("Computing", TEXT), "json")])
        services.default_collection.delete(result.document.id)
        assert services.triples is not None and services.triples.wait(10)
        assert services.triples.stats["done"] == 0
        assert services.default_collection.graph.g.number_of_nodes() == 0
    finally:
        stub_llm.delay_s = 0.0
