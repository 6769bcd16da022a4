"""Multi-hop chaining (app/chain.py): a two-hop corpus where one pass drops the bridge passage and
a second hop brings it back after the passage that named it; limits; hops=0 is one pass."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.chain import Link, chain_order
from app.follow_up import MalformedFollowUp, parse
from app.hops import Hops
from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.sse import parse_sse
from tests.app.stub_llm import StubServer

# "the director of The Silent Harbour" is named only in the film's passage; the director's own
# passage shares no word with the question, and a distractor director matches it better
DOCS = [
    (
        "The Silent Harbour",
        "The Silent Harbour is a 1994 drama film about a fishing village. It was directed by "
        "Marek Wilczynski. The film was shot over two summers on the Baltic coast.",
    ),
    (
        "Marek Wilczynski",
        "Marek Wilczynski was born in Krakow in 1951. He holds Polish citizenship. He studied "
        "painting before he worked in cinema.",
    ),
    (
        "Ingrid Dahl",
        "Ingrid Dahl is a Norwegian director of drama films. The nationality of a director "
        "shapes the films, she said.",
    ),
    (
        "The Blue Orchard",
        "The Blue Orchard is a 2001 comedy film about two sisters. It was directed by Anna Berg. "
        "It won an audience award in Gothenburg.",
    ),
    (
        "Anna Berg",
        "Anna Berg is a Swedish director born in Uppsala. Her films are known for long takes.",
    ),
    (
        "Harbour towns",
        "Harbour towns on the Baltic coast depend on fishing and tourism. Many were rebuilt after "
        "the war.",
    ),
]
QUESTION = "What is the nationality of the director of The Silent Harbour?"


@pytest.fixture
def corpus(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(settings, embedder)) as client:
        for title, text in DOCS:
            assert client.post("/documents", json={"title": title, "text": text}).status_code == 201
        yield client


def _ask(client: TestClient, **body: object) -> dict[str, object]:
    r = client.post("/ask", json={"question": QUESTION, "top_k": 2, **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_one_pass_drops_the_bridge_passage_and_a_hop_brings_it_back(corpus: TestClient) -> None:
    single = _ask(corpus, hops=0)
    assert "Marek Wilczynski" not in [c["title"] for c in single["citations"]]  # type: ignore[index]
    chained = _ask(corpus, hops=1)
    cited = chained["citations"]
    # the hop adds to the context: whatever one pass sent is still sent (top_k + what hops found)
    assert {c["title"] for c in single["citations"]} <= {c["title"] for c in cited}  # type: ignore[index]
    assert len(cited) == len(single["citations"]) + 1  # type: ignore[arg-type]
    titles = [c["title"] for c in cited]  # type: ignore[index]
    assert titles[:2] == ["The Silent Harbour", "Marek Wilczynski"]  # the chain in reading order
    film, director = cited[0], cited[1]  # type: ignore[index]
    assert film["hop"] == 0 and film["bridge"] is None
    assert director["hop"] == 1 and director["bridge"] == "Marek Wilczynski"
    assert director["led_by"] == film["n"]
    stats = chained["stats"]
    assert stats["hops"] == 1 and "Marek Wilczynski" in stats["bridges"]  # type: ignore[index]
    assert "hops" in stats["timings_ms"]  # type: ignore[index]
    assert single["stats"]["hops"] == 0 and single["stats"]["bridges"] == []  # type: ignore[index]


def test_explain_and_stream_report_the_hops(corpus: TestClient) -> None:
    explained = _ask(corpus, hops=1, explain=True)["explain"]
    [trace] = explained["hops"]  # type: ignore[index]
    assert trace["hop"] == 1 and trace["added_chunk_ids"]
    assert set(trace["added_chunk_ids"]) <= set(trace["pruned_again_chunk_ids"])
    assert {"entity": "Marek Wilczynski", "from_chunk_id": 1} in trace["bridges"]
    hopped = [c for c in explained["candidates"] if c["hop"] == 1]  # type: ignore[index]
    assert [c["bridge"] for c in hopped] == ["Marek Wilczynski"]
    with corpus.stream(
        "POST", "/ask", json={"question": QUESTION, "top_k": 2, "hops": 1, "stream": True}
    ) as r:
        events = parse_sse(r.iter_lines())
    assert events[0][0] == "retrieval" and events[0][1]["hops"] == 1  # type: ignore[index]
    done = events[-1][1]
    assert [c["hop"] for c in done["citations"]][:2] == [0, 1]  # type: ignore[index]


def test_hops_zero_is_one_pass(corpus: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """hops=0 never enters the chaining code, so its answers are the single pass's."""
    before = _ask(corpus, hops=0)

    def no_chain(*args: object, **kwargs: object) -> None:
        raise AssertionError("hops=0 must not chain")

    monkeypatch.setattr(Hops, "run", no_chain)
    again = _ask(corpus, hops=0)
    assert again["context"] == before["context"] and again["answer"] == before["answer"]
    assert "hops" not in again["stats"]["timings_ms"]  # type: ignore[index]


def test_a_single_hop_question_keeps_its_context(corpus: TestClient) -> None:
    question = {"question": "Where was Anna Berg born?", "top_k": 2}
    one = corpus.post("/ask", json={**question, "hops": 0}).json()
    two = corpus.post("/ask", json={**question, "hops": 1}).json()
    assert one["citations"][0]["title"] == two["citations"][0]["title"] == "Anna Berg"
    assert "Uppsala" in two["answer"]


def test_hop_limits(settings: Settings, embedder: Embedder) -> None:
    bounded = settings.model_copy(
        update={"max_hops": 1, "hop_candidates": 2, "hop_new_candidates": 2, "hop_bridges": 1}
    )
    with TestClient(create_app(bounded, embedder)) as client:
        for title, text in DOCS:
            client.post("/documents", json={"title": title, "text": text})
        r = client.post("/ask", json={"question": QUESTION, "hops": 2})
        assert r.status_code == 422 and "SIEVE_MAX_HOPS" in r.json()["detail"]
        assert client.post("/ask", json={"question": QUESTION, "hops": -1}).status_code == 422
        r = client.post("/ask", json={"question": QUESTION, "hops": 1, "explain": True})
        traces = r.json()["explain"]["hops"]
        assert traces  # the question names the film: its passage names the director
        ids = {c["chunk_id"] for c in r.json()["explain"]["candidates"]}
        for trace in traces:
            assert len(trace["bridges"]) <= 1
            assert trace["new_candidates"] <= 2 and trace["pruned_again"] <= 4
            judged = trace["pruned_again_chunk_ids"]
            assert len(judged) == trace["pruned_again"] and set(trace["added_chunk_ids"]) <= ids
            assert all(isinstance(i, int) and i > 0 for i in judged)


def test_chain_order_puts_each_passage_after_its_source() -> None:
    links = {3: Link(1, "B", 0), 4: Link(1, "C", 1), 5: Link(2, "D", 3), 6: Link(1, "E", 0)}
    order = [0, 1, 2, 3, 4, 5, 6]
    assert chain_order(order, links, per_source=2) == [0, 3, 5, 6, 1, 4, 2]
    # at most per_source followers; the rest keep their place
    assert chain_order(order, links, per_source=1) == [0, 3, 5, 1, 4, 2, 6]
    # a source outside the order leaves the passage where it was
    assert chain_order([1, 4, 3], {3: Link(1, "B", 9)}, 2) == [1, 4, 3]


@pytest.mark.parametrize(
    ("reply", "query"),
    [
        ('{"missing": "Marek Wilczynski nationality"}', "Marek Wilczynski nationality"),
        ('{"missing": null}', None),
        ('```json\n{"missing": "x y"}\n```', "x y"),
    ],
)
def test_follow_up_replies_are_parsed(reply: str, query: str | None) -> None:
    assert parse(reply) == query


@pytest.mark.parametrize(
    "reply",
    [
        "Sure! The missing fact is his nationality.",
        '{"missing": "a", "why": "b"}',
        '{"missing": 3}',
        '{"missing": ""}',
        '["missing"]',
        '{"missing": "' + "x" * 300 + '"}',
        '{"missing": "two\\nlines"}',
    ],
)
def test_malformed_follow_ups_are_refused(reply: str) -> None:
    with pytest.raises(MalformedFollowUp):
        parse(reply)


def _llm_client(settings: Settings, embedder: Embedder, stub: StubServer) -> TestClient:
    with_llm = settings.model_copy(
        update={
            "llm": "openai",
            "llm_base_url": stub.base_url,
            "llm_model": "tiny",
            "hop_llm": True,
        }
    )
    return TestClient(create_app(with_llm, embedder))


def _follow_ups(stub: StubServer) -> list[dict[str, object]]:
    return [r for r in stub.requests if "still missing" in json.dumps(r["body"]["messages"])]


def test_the_llm_names_the_missing_fact_between_hops(
    settings: Settings, embedder: Embedder, stub_llm: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reply(body: dict[str, object]) -> str:
        if "still missing" in json.dumps(body["messages"]):
            return '{"missing": "nationality of Marek Wilczynski"}'
        return "The director is Polish [2]."

    monkeypatch.setattr(stub_llm, "content", reply)  # the stub is shared: restored after
    stub_llm.requests.clear()
    with _llm_client(settings, embedder, stub_llm) as client:
        for title, text in DOCS:
            client.post("/documents", json={"title": title, "text": text})
        body = {"question": QUESTION, "top_k": 2, "hops": 1, "explain": True}
        first = client.post("/ask", json=body).json()
        [trace] = first["explain"]["hops"]
        assert trace["follow_up"] == "nationality of Marek Wilczynski"
        assert trace["follow_up_by"] == "llm"
        assert [c["title"] for c in first["citations"]][:2] == [
            "The Silent Harbour",
            "Marek Wilczynski",
        ]
        prompt = json.dumps(_follow_ups(stub_llm)[0]["body"]["messages"])
        assert "<context>" in prompt and "directed by Marek Wilczynski" in prompt
        client.post("/ask", json=body)  # the same evidence: answered from the cache
        assert len(_follow_ups(stub_llm)) == 1


@pytest.mark.parametrize(
    ("reply", "how", "hopped"),
    [
        ("I think the nationality is missing.", "failed", True),  # malformed: bridges alone
        ('{"missing": null}', "answered", False),  # nothing missing: no hop
    ],
)
def test_follow_up_fallbacks(
    settings: Settings,
    embedder: Embedder,
    stub_llm: StubServer,
    reply: str,
    how: str,
    hopped: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        stub_llm,
        "content",
        lambda body: reply if "still missing" in json.dumps(body["messages"]) else "Polish [2].",
    )
    with _llm_client(settings, embedder, stub_llm) as client:
        for title, text in DOCS:
            client.post("/documents", json={"title": title, "text": text})
        r = client.post(
            "/ask", json={"question": QUESTION, "top_k": 2, "hops": 1, "explain": True}
        ).json()
        [trace] = r["explain"]["hops"]
        assert trace["follow_up_by"] == how
        titles = [c["title"] for c in r["citations"]]
        assert ("Marek Wilczynski" in titles) is hopped
        assert r["answer"]  # the answer call itself is unaffected


def test_hop_slots_go_to_what_a_hop_found_first() -> None:
    # source 0 has two first-pass followers (hop 0) and one a hop found: with one slot, the hop's
    links = {1: Link(0, "A", 0), 2: Link(0, "B", 0), 3: Link(1, "C", 0)}
    assert chain_order([0, 1, 2, 3], links, per_source=1) == [0, 3, 1, 2]


def test_may_name_matches_whole_words_only() -> None:
    from app.chain import Bridge, may_name

    bridge = [Bridge("UN", "un", 0, 1.0)]
    assert may_name(bridge, ["The UN met in Geneva."], "")
    assert not may_name(bridge, ["It was under way."], "")
    assert may_name(
        [Bridge("Marek Wilczynski", "marek wilczynski", 0, 1.0)], [], "Marek Wilczynski"
    )


def test_default_hops_may_not_exceed_the_maximum(settings: Settings) -> None:
    with pytest.raises(ValueError, match="max_hops"):
        Settings(data_dir=settings.data_dir, hops=3, max_hops=2, _env_file=None)


def test_a_slow_follow_up_counts_as_no_answer() -> None:
    import anyio

    from app.follow_up import FollowUps

    class Slow:
        name = "slow"

        async def complete_text(self, instruction: str, max_tokens: int = 64) -> str:
            await anyio.sleep(5)
            return '{"missing": "late"}'

    follow_ups = FollowUps(timeout_s=0.05)
    found = anyio.run(follow_ups.ask, Slow(), "Q?", ["evidence"])
    assert (found.query, found.how) == (None, "failed") and follow_ups.failures == 1


def test_bridges_closest_to_the_question_come_first(corpus: TestClient) -> None:
    from app.chain import find_bridges

    graph = corpus.app.state.services.pipeline.retrieval.graph()  # type: ignore[attr-defined]
    found = [(0, ["It was directed by Marek Wilczynski.", "It was shot on the Baltic coast."])]
    rare = find_bridges(graph, QUESTION, found, 5)
    assert {b.name for b in rare} == {"Marek Wilczynski", "Baltic"}
    scores = {"Marek Wilczynski": 0.9, "Baltic": 0.1}
    ranked = find_bridges(
        graph, QUESTION, found, 1, relevance=lambda bs: [scores[b.name] for b in bs]
    )
    assert [b.name for b in ranked] == ["Marek Wilczynski"]
    scores = {"Marek Wilczynski": 0.1, "Baltic": 0.9}
    ranked = find_bridges(
        graph, QUESTION, found, 1, relevance=lambda bs: [scores[b.name] for b in bs]
    )
    assert [b.name for b in ranked] == ["Baltic"]


def test_bridge_relevance_reads_the_name_vectors_the_graph_stored(corpus: TestClient) -> None:
    """Scoring bridges embeds nothing the graph already embedded at ingestion: the scores are
    the cosines of the stored name vectors (float16) with the question."""
    import numpy as np

    from app.chain import find_bridges

    pipeline = corpus.app.state.services.pipeline  # type: ignore[attr-defined]
    graph = pipeline.retrieval.graph()
    found = [(0, ["It was directed by Marek Wilczynski.", "It was shot on the Baltic coast."])]
    bridges = find_bridges(graph, QUESTION, found, 5)
    assert set(graph.name_vectors([b.key for b in bridges])) == {b.key for b in bridges}
    asked: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        asked.extend(texts)
        return pipeline.encode(texts)

    hops = Hops(
        pipeline.pruner,
        pipeline.retrieval.graph,
        pipeline.hops.retrieve,
        pipeline.retrieval.title,
        encode,
        pipeline.hop_limits,
    )
    scores = hops._relevance(QUESTION, graph)(bridges)
    assert asked == [QUESTION]  # the names' vectors come from the graph
    embedded = pipeline.encode([QUESTION, *(b.name for b in bridges)])
    assert np.allclose(scores, embedded[1:] @ embedded[0], atol=0.01)


def test_a_hop_refines_only_passages_that_could_be_accepted(corpus: TestClient) -> None:
    """A blended pruner embeds every sentence of a passage it refines: a hop refines only the
    passages where a sentence the model keeps at ``keep_floor`` names a bridge."""
    import dataclasses

    import numpy as np

    from app.chain import find_bridges
    from pruner import BlendedPruner

    pipeline = corpus.app.state.services.pipeline  # type: ignore[attr-defined]
    graph = pipeline.retrieval.graph()
    found = [(0, ["It was directed by Marek Wilczynski."])]
    bridges = find_bridges(graph, QUESTION, found, 1)
    assert [b.name for b in bridges] == ["Marek Wilczynski"]
    names = ["Marek Wilczynski is a Polish film director.", "He was born in Gdansk."]
    other = ["The harbour freezes in winter.", "Ferries stop running in January."]
    embedded: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        return pipeline.encode(texts)

    inner = pipeline.pruner
    assert isinstance(inner, BlendedPruner)
    counting = BlendedPruner(inner.inner, encode, inner.blend)
    options = corpus.app.state.services.sieve.options()  # type: ignore[attr-defined]
    query = f"{QUESTION} Marek Wilczynski"
    for floor, refined in ((0.0, names), (1.1, [])):  # 1.1: no probability reaches it
        limits = dataclasses.replace(pipeline.hop_limits, keep_floor=floor)
        hops = Hops(
            counting,
            pipeline.retrieval.graph,
            pipeline.hops.retrieve,
            pipeline.retrieval.title,
            encode,
            limits,
        )
        embedded.clear()
        out = hops._prune_again(query, [names, other], ["", ""], graph, bridges, options)
        assert [s for s in embedded if s != query] == refined  # `other` names no bridge
        assert out[1].kept == [] and (out[0].kept != []) == bool(refined)


def test_a_hop_embeds_no_query_of_its_own(
    corpus: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hop's vector and graph channels use the question's (cached) vector; the bridge
    names reach BM25 and the graph's linking through the query text."""
    services = corpus.app.state.services  # type: ignore[attr-defined]
    pipeline = services.pipeline
    cached = pipeline.encode
    embedded: list[str] = []

    def encode(texts: list[str]) -> object:
        embedded.extend(texts)
        return cached(texts)

    monkeypatch.setattr(pipeline, "encode", encode)
    monkeypatch.setattr(pipeline.hops, "encode", encode)
    answer = pipeline._retrieve_and_prune(QUESTION, services.sieve.options(hops=1), {})
    assert answer.hops == 1
    assert not [t for t in embedded if t.startswith(QUESTION) and t != QUESTION]


def test_hop_retrieval_searches_what_can_find_new_chunks(corpus: TestClient) -> None:
    """A hop never runs the question's vector search again (it finds the first pass's chunks);
    vector mode alone embeds the hop's query. Known chunks never take a new one's place."""
    from app.hops import hop_retrievers

    assert hop_retrievers("hybrid") == ("lexical", "graph")
    assert hop_retrievers("graph") == ("graph",) and hop_retrievers("lexical") == ("lexical",)
    assert hop_retrievers("vector") == ("vector",)
    pipeline = corpus.app.state.services.pipeline  # type: ignore[attr-defined]
    first = pipeline.retrieval.search(QUESTION, ("vector", "lexical"), 2)
    skip = {c.chunk.id for c in first}
    after = pipeline.retrieval.search(QUESTION, ("vector", "lexical"), 2, skip=skip)
    assert len(after) == 2 and not skip & {c.chunk.id for c in after}
