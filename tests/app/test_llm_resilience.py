"""LLM failures never take /ask down: retries, deadline and circuit breaker of a backend (against
the real stub HTTP server), and degraded extractive answers through the API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.llm import (
    CircuitOpenError,
    ContextSentence,
    LLMBusyError,
    LLMError,
    LLMTransientError,
    OpenAILLM,
    Passage,
    ResilientLLM,
    TextCompleter,
    with_resilience,
)
from app.settings import Settings
from index import Embedder
from tests.app.live_server import live_server
from tests.app.sse import parse_sse
from tests.app.stub_llm import StubServer

PASSAGES = [Passage(1, "Paris", (), [ContextSentence("The Eiffel Tower is in Paris.", 0.9)])]
DOC = {
    "title": "Collection rules",
    "text": "The library opens at nine in the morning. Loans last three weeks. "
    "Late returns cost twenty cents per day.",
}
QUESTION = "How long do loans last?"
FAST = {"llm_retries": 1, "llm_backoff_s": 0.01}


@pytest.fixture
def stub(stub_llm: StubServer) -> Iterator[StubServer]:
    """The session's stub server, its knobs restored afterwards (other tests share it)."""
    content = stub_llm.content
    yield stub_llm
    stub_llm.status, stub_llm.delay_s, stub_llm.fail_next = 200, 0.0, 0
    stub_llm.fail_status, stub_llm.content = 500, content


@pytest.fixture
def model() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"


def _wrapped(
    stub: StubServer,
    model: str = "m",
    retries: int = 2,
    timeout_s: float = 5.0,
    failures: int = 5,
    cooldown_s: float = 30.0,
) -> ResilientLLM:
    inner = OpenAILLM(stub.base_url, model, timeout_s=5)
    return with_resilience(inner, retries, 0.01, timeout_s, failures, cooldown_s)


def _calls(stub: StubServer, model: str) -> int:
    """Requests for ``model``: one name per test, so a request of an earlier test that reaches
    the stub late (given up on by its client) is never counted."""
    return sum(r["body"]["model"] == model for r in stub.requests)


def _app(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str, **overrides: object
) -> TestClient:
    from app.main import create_app

    update = {"llm": "openai", "llm_base_url": stub.base_url, "llm_model": model}
    update.update(FAST, **overrides)
    return TestClient(create_app(settings.model_copy(update=update), embedder))


# --- the wrapper, against the stub server --------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_failures_are_retried_until_success(
    stub: StubServer, model: str, status: int
) -> None:
    stub.fail_next, stub.fail_status = 2, status
    llm = _wrapped(stub, model)
    assert asyncio.run(llm.generate("q", PASSAGES)) == "In Paris [1]."
    assert _calls(stub, model) == 3
    assert llm.breaker.snapshot().state == "closed"
    assert llm.breaker.snapshot().consecutive_failures == 0


@pytest.mark.parametrize("status", [400, 401])
def test_client_errors_are_not_retried(stub: StubServer, model: str, status: int) -> None:
    stub.status = status
    with pytest.raises(LLMError, match=str(status)) as info:
        asyncio.run(_wrapped(stub, model).generate("q", PASSAGES))
    assert not info.value.retryable and _calls(stub, model) == 1


def test_timeout_is_the_wrappers_deadline_and_is_retried(
    stub: StubServer, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    stub.delay_s = 2.0
    started = time.perf_counter()
    with pytest.raises(LLMTransientError, match=r"timed out: no answer within 0\.2 s"):
        asyncio.run(_wrapped(stub, model, retries=1, timeout_s=0.2).generate("q", PASSAGES))
    assert time.perf_counter() - started < 1.5  # two deadlines, not the stub's 2 s
    # (attempts counted from the log: under load a request given up after 0.2 s may not
    # have reached the stub yet)
    assert caplog.text.count("attempt 1 failed, retrying") == 1


def test_breaker_opens_after_n_failures_and_fails_fast(stub: StubServer, model: str) -> None:
    stub.status = 500
    llm = _wrapped(stub, model, retries=0, failures=3)

    async def run() -> None:
        for _ in range(3):
            with pytest.raises(LLMTransientError):
                await llm.generate("q", PASSAGES)
        with pytest.raises(CircuitOpenError, match=r"circuit of llm 'openai' is open.*retrying in"):
            await llm.generate("q", PASSAGES)

    asyncio.run(run())
    assert _calls(stub, model) == 3  # the fourth call never reached the server
    state = llm.breaker.snapshot()
    assert (state.state, state.consecutive_failures) == ("open", 3)
    assert state.opened_at and state.retry_in_s and 29 < state.retry_in_s <= 30


def test_retries_stop_once_the_breaker_opens(stub: StubServer, model: str) -> None:
    stub.status = 503
    with pytest.raises(CircuitOpenError):
        asyncio.run(_wrapped(stub, model, retries=5, failures=2).generate("q", PASSAGES))
    assert _calls(stub, model) == 2


def test_half_open_trial_closes_or_reopens_the_circuit(stub: StubServer, model: str) -> None:
    stub.status = 500
    llm = _wrapped(stub, model, retries=0, failures=2, cooldown_s=0.2)

    async def run() -> None:
        for _ in range(2):
            with pytest.raises(LLMTransientError):
                await llm.generate("q", PASSAGES)
        await asyncio.sleep(0.25)
        assert llm.breaker.snapshot().state == "half_open"
        with pytest.raises(LLMTransientError):  # the trial fails: open again at once
            await llm.generate("q", PASSAGES)
        assert llm.breaker.snapshot().state == "open"
        await asyncio.sleep(0.25)
        stub.status, stub.delay_s = 200, 0.2
        # one trial at a time: the concurrent call fails fast while the trial is in flight
        trial, other = await asyncio.gather(
            llm.generate("q", PASSAGES), llm.generate("q", PASSAGES), return_exceptions=True
        )
        assert trial == "In Paris [1]." or other == "In Paris [1]."
        failed = other if trial == "In Paris [1]." else trial
        assert isinstance(failed, CircuitOpenError) and "trial call" in str(failed)

    asyncio.run(run())
    assert llm.breaker.snapshot().state == "closed"


class _Fake:
    """A backend whose failures are scripted (what no HTTP server can do on cue)."""

    name = "fake"

    def __init__(self, error: LLMError, pieces: list[str] | None = None) -> None:
        self.error, self.pieces, self.calls = error, pieces or [], 0

    async def generate(self, question: str, passages: list[Passage]) -> str:
        self.calls += 1
        raise self.error

    async def stream(self, question: str, passages: list[Passage]) -> AsyncIterator[str]:
        self.calls += 1
        for piece in self.pieces:
            yield piece
        raise self.error

    async def aclose(self) -> None:
        return None


def _wrap_fake(fake: _Fake) -> ResilientLLM:
    return with_resilience(fake, retries=3, backoff_s=0.0, timeout_s=5, failures=2, cooldown_s=30)


def test_busy_is_neither_retried_nor_counted() -> None:
    fake = _Fake(LLMBusyError("busy: 8 waiting"))
    llm = _wrap_fake(fake)
    for _ in range(3):
        with pytest.raises(LLMBusyError):
            asyncio.run(llm.generate("q", PASSAGES))
    assert fake.calls == 3 and llm.breaker.snapshot().state == "closed"
    assert llm.breaker.snapshot().consecutive_failures == 0
    assert not isinstance(llm, TextCompleter)  # the fake has no complete_text


def test_backoff_doubles_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    delays: list[float] = []
    real_sleep, here = asyncio.sleep, threading.get_ident()

    async def sleep(seconds: float, *args: Any) -> Any:
        if threading.get_ident() != here:  # another test's server thread: sleeps for real
            return await real_sleep(seconds, *args)
        delays.append(seconds)
        return None

    monkeypatch.setattr(asyncio, "sleep", sleep)
    fake = _Fake(LLMTransientError("reset"))
    llm = with_resilience(fake, retries=3, backoff_s=0.1, timeout_s=5, failures=9, cooldown_s=30)
    with pytest.raises(LLMTransientError):
        asyncio.run(llm.generate("q", PASSAGES))
    assert fake.calls == 4 and len(delays) == 3
    for i, delay in enumerate(delays):
        assert 0.05 * 2**i <= delay <= 0.1 * 2**i


def test_stream_is_never_retried_after_its_first_piece() -> None:
    fake = _Fake(LLMTransientError("connection reset"), pieces=["Half an"])

    async def read() -> list[str]:
        got: list[str] = []
        with pytest.raises(LLMTransientError, match="reset"):
            async for piece in _wrap_fake(fake).stream("q", PASSAGES):
                got.append(piece)
        return got

    assert asyncio.run(read()) == ["Half an"] and fake.calls == 1


def test_stream_is_retried_before_its_first_piece(stub: StubServer, model: str) -> None:
    stub.fail_next = 1
    llm = _wrapped(stub, model)
    assert isinstance(llm, TextCompleter)  # openai can rewrite follow-ups: still can

    async def read() -> str:
        return "".join([p async for p in llm.stream("q", PASSAGES)])

    assert asyncio.run(read()).strip() == "In Paris [1]."
    assert _calls(stub, model) == 2


# --- through the API: degraded answers -------------------------------------------------------


def test_ask_answers_extractively_when_the_llm_fails(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    stub.status = 500
    with _app(settings, embedder, stub, model) as client:
        client.post("/documents", json=DOC)
        r = client.post("/ask", json={"question": QUESTION})
        health = client.get("/healthz").json()
        metrics = client.get("/metrics").text
    assert "sieve_answers_degraded_total 1.0" in metrics
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["llm"] == "extractive" and "Loans last three weeks. [1]" in body["answer"]
    assert body["degraded"].startswith("llm 'openai' unavailable: LLM server at")
    assert "500" in body["degraded"] and body["degraded"].endswith("answered extractively")
    assert body["stats"]["tokens_after"] > 0 and body["stats"]["timings_ms"]["llm"] > 0
    assert _calls(stub, model) == 2  # one retry (llm_retries=1)
    assert health["llm_breakers"]["openai"]["state"] == "closed"
    assert health["llm_breakers"]["openai"]["consecutive_failures"] == 2
    assert "extractive" not in health["llm_breakers"]


def test_normal_answers_are_not_degraded(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    with _app(settings, embedder, stub, model) as client:
        client.post("/documents", json=DOC)
        body = client.post("/ask", json={"question": QUESTION}).json()
    assert body["llm"] == "openai" and body["degraded"] is None


def test_open_circuit_answers_fast_without_calling_the_llm(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    stub.status = 503
    with _app(settings, embedder, stub, model, llm_retries=0, llm_breaker_failures=1) as client:
        client.post("/documents", json=DOC)
        first = client.post("/ask", json={"question": QUESTION}).json()
        before = _calls(stub, model)
        second = client.post("/ask", json={"question": QUESTION}).json()
        breaker = client.get("/healthz").json()["llm_breakers"]["openai"]
    assert "503" in first["degraded"] and "is open after 1 consecutive" in second["degraded"]
    assert second["llm"] == "extractive" and _calls(stub, model) == before
    assert breaker["state"] == "open" and breaker["consecutive_failures"] == 1
    assert breaker["opened_at"] and 0 < breaker["retry_in_s"] <= 30


def test_timeout_is_retried_then_degraded(
    settings: Settings,
    embedder: Embedder,
    stub: StubServer,
    model: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub.delay_s = 2.0
    with _app(settings, embedder, stub, model, llm_timeout_s=0.2) as client:
        client.post("/documents", json=DOC)
        body = client.post("/ask", json={"question": QUESTION}).json()
    assert body["llm"] == "extractive" and "timed out" in body["degraded"]
    assert caplog.text.count("attempt 1 failed, retrying") == 1  # llm_retries=1


def test_streamed_ask_degrades_before_the_first_token(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    stub.status = 500
    with _app(settings, embedder, stub, model) as client:
        client.post("/documents", json=DOC)
        with client.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as r:
            events = parse_sse(r.iter_lines())
    names = [name for name, _ in events]
    assert names[:2] == ["retrieval", "context"] and names[-1] == "done" and "error" not in names
    done = events[-1][1]
    tokens = "".join(data["text"] for name, data in events if name == "token")
    assert done["llm"] == "extractive" and "500" in done["degraded"]
    assert tokens.strip() == done["answer"] and "[1]" in done["answer"]


def test_failure_after_the_first_token_stays_an_in_band_error(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    with _app(settings, embedder, stub, model) as client:
        client.post("/documents", json=DOC)
        fake = _Fake(LLMTransientError("connection reset"), pieces=["Loans last"])
        client.app.state.services.pipeline.llms["openai"] = _wrap_fake(fake)  # type: ignore[attr-defined]
        with client.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as r:
            events = parse_sse(r.iter_lines())
    assert [e for e in events if e[0] == "token"] == [("token", {"text": "Loans last"})]
    assert events[-1] == ("error", {"detail": "connection reset"}) and fake.calls == 1


def test_chat_endpoints_answer_degraded_too(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    stub.status = 502
    chat = {"messages": [{"role": "user", "content": QUESTION}]}
    with _app(settings, embedder, stub, model) as client:
        client.post("/documents", json=DOC)
        r = client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 200, r.text
    extra = r.json()["sieve"]
    assert extra["llm"] == "extractive" and "502" in extra["degraded"]
    assert "Loans last three weeks." in r.json()["choices"][0]["message"]["content"]


def test_fallback_off_keeps_the_502(
    settings: Settings, embedder: Embedder, stub: StubServer, model: str
) -> None:
    stub.status = 500
    with _app(settings, embedder, stub, model, llm_fallback=False) as client:
        client.post("/documents", json=DOC)
        r = client.post("/ask", json={"question": QUESTION})
    assert r.status_code == 502 and "500" in r.json()["detail"]


# --- a slow LLM never blocks other requests ---------------------------------------------------


def test_slow_llm_does_not_block_other_requests(
    settings: Settings, embedder: Embedder, stub: StubServer
) -> None:
    from app.main import create_app

    stub.delay_s = 2.0
    app = create_app(
        settings.model_copy(update={"llm": "openai", "llm_base_url": stub.base_url}), embedder
    )

    async def run(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await client.post("/documents", json=DOC)
            await client.post("/ask", json={"question": QUESTION, "llm": "extractive"})  # warm
            slow = asyncio.create_task(client.post("/ask", json={"question": QUESTION}))
            await asyncio.sleep(0.5)  # retrieval done, waiting on the LLM
            for request in (
                client.get("/healthz"),
                client.post("/ask", json={"question": QUESTION, "llm": "extractive"}),
            ):
                started = time.perf_counter()
                r = await request
                assert r.status_code == 200 and time.perf_counter() - started < 1.0
            assert not slow.done()
            assert (await slow).json()["llm"] == "openai"

    with live_server(app) as base:
        asyncio.run(run(base))
