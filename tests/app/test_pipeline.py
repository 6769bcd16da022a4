"""Pipeline stages: budget, top_k, openai backend through /ask, LLM failure surfaces as 502."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from index import Embedder
from tests.app.stub_llm import StubServer

TEXT = (
    "The library opens at nine in the morning. It closes at six in the evening. "
    "Members can borrow ten books at a time. Loans last three weeks. "
    "Late returns cost twenty cents per day. The reading room is on the second floor."
)


def _client_with(settings: Settings, embedder: Embedder, **overrides: object) -> TestClient:
    from app.main import create_app

    return TestClient(create_app(settings.model_copy(update=overrides), embedder))


def test_token_budget_keeps_whole_sentences(client: TestClient) -> None:
    client.post("/documents", json={"title": "Collection rules", "text": TEXT})
    question = {"question": "When does the library open and close?", "prune_threshold": 0.0}
    full = client.post("/ask", json=question).json()
    tight = client.post("/ask", json={**question, "max_context_tokens": 16}).json()
    assert full["stats"]["tokens_after"] > tight["stats"]["tokens_after"] > 0
    assert tight["stats"]["tokens_after"] <= 16
    kept = tight["citations"][0]["sentences"]
    assert all(s["text"].endswith(".") for s in kept)  # no cut sentence
    assert full["stats"]["tokens_before"] == tight["stats"]["tokens_before"]


def test_top_k_limits_citations(settings: Settings, embedder: Embedder) -> None:
    for mode in ("fused", "pruner", "blend"):
        with _client_with(settings, embedder, rerank=mode) as client:
            for i, topic in enumerate(["cats", "dogs", "birds", "fish"]):
                client.post(
                    "/documents",
                    json={"title": f"T{i}", "text": f"Facts about {topic}. {topic} are animals."},
                )
            question = {"question": "animals", "top_k": 2, "prune_threshold": 0.0}
            r = client.post("/ask", json=question).json()
            assert [c["n"] for c in r["citations"]] == [1, 2]
            if mode == "pruner":  # ordered by the pruner's score alone
                assert r["citations"][0]["score"] >= r["citations"][1]["score"]


def test_openai_backend_through_ask(
    settings: Settings, embedder: Embedder, stub_llm: StubServer
) -> None:
    with _client_with(
        settings, embedder, llm="openai", llm_base_url=stub_llm.base_url, llm_model="tiny"
    ) as client:
        client.post("/documents", json={"title": "Collection rules", "text": TEXT})
        r = client.post("/ask", json={"question": "How long do loans last?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["llm"] == "openai" and body["answer"] == "In Paris [1]."
        sent = stub_llm.requests[-1]["body"]["messages"][1]["content"]
        assert body["context"] in sent and "Loans last three weeks." in sent


def test_llm_down_is_a_502_with_reason(settings: Settings, embedder: Embedder) -> None:
    with _client_with(  # without the extractive fallback (test_llm_resilience has it)
        settings,
        embedder,
        llm="openai",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_timeout_s=2,
        llm_retries=0,
        llm_fallback=False,
    ) as client:
        client.post("/documents", json={"title": "Collection rules", "text": TEXT})
        r = client.post("/ask", json={"question": "How long do loans last?"})
        assert r.status_code == 502 and "unreachable" in r.json()["detail"]


def test_budget_counts_headers_and_skips_sentences_that_do_not_fit(client: TestClient) -> None:
    long = "The reading room " + "is quiet and bright and large " * 12 + "on the second floor."
    client.post("/documents", json={"title": "Rooms", "text": f"{long} Loans last three weeks."})
    r = client.post(
        "/ask",
        json={
            "question": "How long do loans last?",
            "prune_threshold": 0.0,
            "max_context_tokens": 24,
        },
    ).json()
    assert not r["abstained"]  # the long sentence is skipped, the short one still fits
    assert r["citations"][0]["text"] == "Loans last three weeks."
    assert r["stats"]["tokens_after"] <= 24
    assert r["stats"]["tokens_before"] > r["stats"]["tokens_after"]


def test_budget_cuts_are_told_apart_from_pruned_sentences(client: TestClient) -> None:
    """A sentence the pruner kept but max_context_tokens had no room for is marked "budget",
    not "pruned", and counted apart in the stats."""
    client.post("/documents", json={"title": "Collection rules", "text": TEXT})
    question = {"question": "When does the library open and close?", "max_context_tokens": 20}
    tight = client.post("/ask", json=question).json()
    stats, citation = tight["stats"], tight["citations"][0]
    source = citation["source"]
    assert {s["dropped"] for s in source} == {None, "budget", "pruned"}
    assert all(s["kept"] == (s["dropped"] is None) for s in source)
    budget = [s for s in source if s["dropped"] == "budget"]
    pruned = [s for s in source if s["dropped"] == "pruned"]
    assert min(s["score"] for s in budget) > max(s["score"] for s in pruned)  # kept by the pruner
    assert citation["over_budget_sentences"] == len(budget) == stats["sentences_over_budget"]
    assert citation["pruned_sentences"] == len(budget) + len(pruned)  # unchanged meaning
    assert stats["sentences_pruned"] == len(pruned)
    assert stats["tokens_pruned"] > 0 and stats["tokens_over_budget"] > 0
    # one passage: whatever was not sent was either pruned or over the budget
    cut = stats["tokens_pruned"] + stats["tokens_over_budget"]
    assert stats["tokens_before"] == stats["tokens_after"] + cut

    roomy = client.post("/ask", json={**question, "max_context_tokens": 4000}).json()
    assert roomy["stats"]["tokens_over_budget"] == roomy["stats"]["sentences_over_budget"] == 0
    assert roomy["stats"]["tokens_pruned"] == stats["tokens_pruned"]  # the same pruner cut
    assert "budget" not in {s["dropped"] for s in roomy["citations"][0]["source"]}


def test_no_pruning_means_no_compression(client: TestClient) -> None:
    client.post("/documents", json={"title": "Collection rules", "text": TEXT})
    r = client.post("/ask", json={"question": "When does it open?", "prune_threshold": 0.0})
    assert r.json()["stats"]["compression"] == 0.0


def test_concurrent_asks_and_uploads(client: TestClient) -> None:
    """One tokenizer serves every thread: concurrent requests must not trip over it."""
    from concurrent.futures import ThreadPoolExecutor

    client.post("/documents", json={"title": "Collection rules", "text": TEXT})

    def ask(i: int) -> int:
        return client.post(
            "/ask", json={"question": f"When does the library open? {i}"}
        ).status_code

    def upload(i: int) -> int:
        text = f"Branch {i} opens at {i} o'clock. It has {i} shelves of novels."
        return client.post("/documents", json={"title": f"Branch {i}", "text": text}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(ask, range(24))) + list(pool.map(upload, range(8)))
    assert set(codes) <= {200, 201}
    assert client.get("/documents").json()["total"] == 9


def test_other_pruners_are_selectable(
    settings: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The similarity baseline, and another checkpoint dir (a tiny random one here)."""
    from tests.pruner.tiny import save_tiny_checkpoint

    path = save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), layers=1, max_seq_length=128)
    for options in ({"pruner": "similarity"}, {"pruner": "provence", "pruner_path": path}):
        with _client_with(settings, embedder, **options) as client:
            assert client.app.state.services.pruner.name == options["pruner"]
            client.post("/documents", json={"title": "Collection rules", "text": TEXT})
            r = client.post(
                "/ask", json={"question": "How long do loans last?", "prune_threshold": 0.0}
            )
            assert r.status_code == 200 and r.json()["citations"][0]["kept_sentences"] == 6


def test_rerank_order_fuses_retrieval_and_pruner_ranks() -> None:
    from app.pipeline import rerank_order
    from pruner import assemble

    pruned = [assemble(["s."], [0.5], 0.1, r) for r in (0.2, 0.9, 0.1, 0.8)]
    assert rerank_order(pruned, "pruner") == [1, 3, 0, 2]
    # retrieval order 0,1,2,3 fused with pruner order 1,3,0,2: 1 and 0 lead, 2 stays last
    fused = rerank_order(pruned, "fused")
    assert fused[:2] == [1, 0] and fused[-1] == 2
    with pytest.raises(ValueError, match="rerank mode"):
        rerank_order(pruned, "best")


def test_mix_adds_the_cosine_to_the_rank_head() -> None:
    from app.fusion import mix_scores, rerank_order
    from pruner import assemble

    pruned = [assemble(["s."], [0.5], 0.1, r) for r in (0.9, 0.5, 0.1)]
    cosines = [0.1, 0.4, 0.2]
    assert mix_scores(pruned, cosines, 2.0) == pytest.approx([1.1, 1.3, 0.5])
    assert rerank_order(pruned, "mix", cosines, 2.0) == [1, 0, 2]
    assert rerank_order(pruned, "mix", cosines, 0.0) == [0, 1, 2]  # the rank head alone
    with pytest.raises(ValueError, match="cosines"):
        rerank_order(pruned, "mix")


def test_blend_adds_the_cosine_to_the_best_sentence() -> None:
    from app.fusion import blend_scores, rerank_order
    from pruner import assemble

    # best sentence 0.9 but off topic vs best sentence 0.6 on topic
    pruned = [assemble(["a.", "b."], s, 0.1, 0.5) for s in ([0.2, 0.9], [0.6, 0.1], [])]
    assert blend_scores(pruned, [0.1, 0.3, 0.9], 2.0) == pytest.approx([1.1, 1.2, 1.8])
    assert rerank_order(pruned, "blend", [0.1, 0.3, 0.0], 2.0) == [1, 0, 2]
    assert rerank_order(pruned, "blend", [0.1, 0.3, 0.0], 0.0) == [0, 1, 2]
    with pytest.raises(ValueError, match="cosines"):
        rerank_order(pruned, "blend")


def test_blend_mode_ranks_the_on_topic_passage_first(
    settings: Settings, embedder: Embedder
) -> None:
    with _client_with(settings, embedder, rerank="blend") as client:
        client.post("/documents", json={"title": "Collection rules", "text": TEXT})
        client.post(
            "/documents",
            json={"title": "Zoo", "text": "The zoo opens at nine. Penguins are fed at noon."},
        )
        r = client.post("/ask", json={"question": "When are the penguins fed?"}).json()
        assert r["citations"][0]["title"] == "Zoo" and "rerank" in r["stats"]["timings_ms"]


def test_sentence_blend_is_the_default_and_can_be_turned_off(
    settings: Settings, embedder: Embedder
) -> None:
    """The shipped checkpoint has a blend.json: sentences are kept by it, passages refined best
    first until the context has its top_k (all of them with explain); off, the keep probability
    alone decides, as before."""
    from pruner import BlendedPruner, ContextPruner

    topics = ["cats", "dogs", "birds", "fish", "horses", "goats"]
    with _client_with(settings, embedder) as client:
        pruner = client.app.state.services.pruner
        assert isinstance(pruner, BlendedPruner)
        client.post("/documents", json={"title": "Collection rules", "text": TEXT})
        for i, topic in enumerate(topics):
            client.post(
                "/documents",
                json={"title": f"T{i}", "text": f"Facts about {topic}. {topic} eat grass or meat."},
            )
        question = {"question": "How long do loans last?", "top_k": 2}
        r = client.post("/ask", json=question).json()
        assert "Loans last three weeks." in r["context"]
        assert "sentence_blend" in r["stats"]["timings_ms"]
        explained = client.post("/ask", json={**question, "explain": True}).json()
        assert explained["context"] == r["context"]
        assert len(explained["explain"]["candidates"]) == 7
    with _client_with(settings, embedder, pruner_blend=False) as client:
        assert isinstance(client.app.state.services.pruner, ContextPruner)
        client.post("/documents", json={"title": "Collection rules", "text": TEXT})
        r = client.post("/ask", json={"question": "How long do loans last?"}).json()
        assert "Loans last three weeks." in r["context"]


def test_sentence_blend_context_is_the_same_as_refining_everything(
    settings: Settings, embedder: Embedder
) -> None:
    """Passages refined lazily (best first, until top_k are cited) give the same context as
    refining all of them (explain), also when the token budget skips the long passages that
    rank first (budgets 24 and 60 here: the lazy path refines the rest and assembles again)."""
    long = (
        "Loans of rare books from the special collection last for two weeks and must be "
        "requested in writing at the front desk of the main reading room, where a librarian "
        "checks the member card, the return date and the condition of every volume borrowed."
    )
    with _client_with(settings, embedder) as client:
        for i in range(3):
            client.post(
                "/documents", json={"title": f"Rare {i}", "text": long.replace("two", str(i + 2))}
            )
            client.post(
                "/documents", json={"title": f"Short {i}", "text": f"Loans last {i + 3} weeks."}
            )
        for budget in (24, 60, 1024):
            question = {
                "question": "How long do loans of rare books from the special collection last?",
                "top_k": 2,
                "max_context_tokens": budget,
            }
            lazy = client.post("/ask", json=question).json()
            full = client.post("/ask", json={**question, "explain": True}).json()
            assert lazy["context"] == full["context"], budget
            assert len(lazy["citations"]) == len(full["citations"]) >= 1


def test_pipeline_uses_the_shared_cached_encoder(settings: Settings, embedder: Embedder) -> None:
    """A fresh CachedEncoder is empty, so it has length 0 and is falsy: an ``encode or
    embedder.encode`` fallback silently dropped it, and every question, sent sentence and
    bridge name was embedded again on every question."""
    from app.parsing import parse_text
    from app.services import Services
    from index import CachedEncoder

    services = Services.build(settings, embedder)
    pipeline = services.pipeline
    assert isinstance(pipeline.encode, CachedEncoder) and len(pipeline.encode) == 0
    assert pipeline.hops.encode is pipeline.encode
    services.default_collection.ingest([(parse_text("Collection rules", TEXT), "json")])
    options = services.sieve.options(hops=0)
    question = "How long do loans last?"
    first = pipeline._retrieve_and_prune(question, options, {})
    filled = len(pipeline.encode)
    sent = [s.text for c in first.citations for s in c.kept]
    assert filled >= 1 + len(sent)  # the question and every sent sentence
    again = pipeline._retrieve_and_prune(question, options, {})
    assert len(pipeline.encode) == filled  # nothing embedded a second time
    assert again.context == first.context
