"""/ask with stream=true: retrieval, context, token…, done as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.sse import parse_sse
from tests.app.stub_llm import StubServer

DOC = {
    "title": "Harbour guide",
    "text": "The lighthouse at Kessel Point was built in 1871 by Ada Brand. "
    "It is painted red and white. The harbour market opens on Saturdays. "
    "Ferries to Lindholm leave every two hours.",
}


def _stream(client: TestClient, body: dict[str, object]) -> list[tuple[str | None, object]]:
    with client.stream("POST", "/ask", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return parse_sse(r.iter_lines())


def test_stream_events_in_order_and_done_equals_plain_answer(client: TestClient) -> None:
    assert client.post("/documents", json=DOC).status_code == 201
    # a threshold above the blend's default, so this short passage surely has a pruned sentence
    question = {"question": "Who built the lighthouse at Kessel Point?", "prune_threshold": 0.1}
    events = _stream(client, question)
    names = [name for name, _ in events]
    assert names[:2] == ["retrieval", "context"] and names[-1] == "done"
    assert set(names[2:-1]) == {"token"}
    retrieval, context, done = events[0][1], events[1][1], events[-1][1]
    assert retrieval["retrieval"] == "hybrid" and retrieval["candidates"] >= 1  # type: ignore[index]
    cited = context["citations"][0]  # type: ignore[index]
    assert any(s["kept"] for s in cited["source"]) and any(not s["kept"] for s in cited["source"])
    tokens = "".join(data["text"] for name, data in events if name == "token")  # type: ignore[index]
    assert tokens.strip() == done["answer"] and "Ada Brand" in tokens  # type: ignore[index]
    assert {"prune", "llm", "total"} <= set(done["stats"]["timings_ms"])  # type: ignore[index]
    plain = client.post("/ask", json=question).json()
    assert plain["answer"] == done["answer"]  # type: ignore[index]
    assert plain["citations"] == done["citations"]  # type: ignore[index]


def test_stream_abstains_on_empty_store(client: TestClient) -> None:
    events = _stream(client, {"question": "What is the capital of Atlantis?"})
    assert [n for n, _ in events] == ["retrieval", "context", "token", "done"]
    assert events[-1][1]["abstained"] is True  # type: ignore[index]


def test_stream_validation_errors_are_plain_4xx(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "x", "stream": True, "llm": "nope"})
    assert r.status_code == 422 and "unknown llm backend" in r.json()["detail"]
    r = client.post("/ask", json={"question": "x", "collection": "other"})
    assert r.status_code == 404 and "no collection named" in r.json()["detail"]
    assert client.post("/ask", json={"question": "x", "collection": "default"}).status_code == 200


@pytest.mark.parametrize("status", [200, 500])
def test_stream_with_openai_backend(
    status: int, stub_llm: StubServer, settings: Settings, embedder: Embedder
) -> None:
    settings = settings.model_copy(  # without the extractive fallback (see test_llm_resilience)
        update={
            "llm": "openai",
            "llm_base_url": stub_llm.base_url,
            "llm_timeout_s": 5,
            "llm_retries": 0,
            "llm_fallback": False,
        }
    )
    stub_llm.status = status
    try:
        with TestClient(create_app(settings, embedder)) as client:
            client.post("/documents", json=DOC)
            events = _stream(client, {"question": "Who built the lighthouse?"})
    finally:
        stub_llm.status = 200
    assert stub_llm.requests[-1]["body"]["stream"] is True
    if status == 200:
        tokens = [d["text"] for n, d in events if n == "token"]  # type: ignore[index]
        assert len(tokens) > 2 and events[-1][1]["answer"] == "In Paris [1]."  # type: ignore[index]
        assert events[-1][1]["llm"] == "openai"  # type: ignore[index]
    else:
        assert events[-1][0] == "error" and "500" in events[-1][1]["detail"]  # type: ignore[index]


def test_cors_only_when_configured(settings: Settings, embedder: Embedder) -> None:
    preflight = {
        "Origin": "https://intranet.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with TestClient(create_app(settings, embedder)) as c:
        r = c.options("/ask", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    allowed = settings.model_copy(update={"cors_origins": "https://intranet.example, https://b"})
    with TestClient(create_app(allowed, embedder)) as c:
        r = c.options("/ask", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://intranet.example"


class _Breaks:
    """An LLM that fails with an unexpected error after its first piece."""

    name = "breaks"

    async def generate(self, question: str, passages: object) -> str:
        raise RuntimeError("boom")

    async def stream(self, question: str, passages: object) -> AsyncIterator[str]:
        yield "Half an answer"
        raise RuntimeError("boom")

    async def aclose(self) -> None:
        return None


def test_unexpected_errors_mid_stream_end_every_protocol_in_band(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.post("/documents", json=DOC)
    client.app.state.services.pipeline.llms["breaks"] = _Breaks()  # type: ignore[attr-defined]
    q = "Who built the lighthouse at Kessel Point?"
    events = _stream(client, {"question": q, "llm": "breaks"})
    assert events[-1][0] == "error" and "internal error" in events[-1][1]["detail"]  # type: ignore[index]
    assert events[1][1]["stats"]["timings_ms"]["prune"] > 0  # type: ignore[index]
    chat = {"llm": "breaks", "stream": True, "messages": [{"role": "user", "content": q}]}
    with client.stream("POST", "/v1/chat/completions", json=chat) as r:
        lines = parse_sse(r.iter_lines())
    assert lines[-1][1] == "[DONE]" and lines[-2][1]["error"]["code"] == 500  # type: ignore[index]
    r = client.post("/api/chat", json=chat)
    assert "internal error" in r.text.splitlines()[-1]
    assert "boom" in caplog.text  # the traceback is in the log, not in the response


def test_chat_input_is_validated(client: TestClient) -> None:
    bad = '{"messages": [{"role": "user", "content": "hi \\ud800"}]}'
    r = client.post(
        "/v1/chat/completions", content=bad, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    parts = [{"type": "text", "text": "x"}] * 65
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": parts}]})
    assert r.status_code == 422
    assert client.get("/v1/models/meta-llama/Llama-3").json()["id"] == "meta-llama/Llama-3"
