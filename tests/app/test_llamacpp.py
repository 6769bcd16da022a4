"""The llama.cpp backend: its prompt, streaming and cancellation on a scripted fake model (fast),
then the real Gemma 3 270M GGUF in-process and behind llama.cpp's OpenAI-compatible server.

The real-model tests need the ``llamacpp`` extra; they are skipped without it, unless
``SIEVE_REQUIRE_LLAMACPP=1`` (CI), where a missing extra fails them. Gemma 270M is a small base
model: they check the shape of its answers, not their truth, and print them.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.llm import ContextSentence, LlamaCppLLM, LLMBusyError, LLMError, OpenAILLM, Passage
from app.llm.llamacpp import assemble_default_model
from app.settings import Settings
from index import Embedder

PASSAGES = [
    Passage(
        1,
        "Paris",
        ("Paris", "Landmarks"),
        [
            ContextSentence("The Eiffel Tower is in Paris.", 0.9),
            ContextSentence("It was completed in 1889 for the World's Fair.", 0.6),
        ],
    ),
    Passage(2, "Rome", (), [ContextSentence("The Colosseum is in Rome.", 0.5)]),
]
QUESTION = "When was the Eiffel Tower completed?"
EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 "
    "as the entrance arch of the World's Fair. It is 330 metres tall."
)
REWRITE = (
    "Rewrite the follow-up as a standalone question.\n"
    "Previous question: Where is the Eiffel Tower?\n"
    "Follow-up: When was it built?\nStandalone question:"
)


def _have_llamacpp() -> bool:
    try:  # an installed but broken build (its shared library fails to load) counts as missing
        importlib.import_module("llama_cpp")
    except Exception:
        return False
    return True


HAVE_LLAMACPP = _have_llamacpp()
REQUIRED = os.environ.get("SIEVE_REQUIRE_LLAMACPP") == "1"
needs_llamacpp = pytest.mark.skipif(
    not HAVE_LLAMACPP and not REQUIRED,
    reason='llama-cpp-python not installed: CMAKE_ARGS="-DGGML_NATIVE=OFF" '
    "pip install -e '.[llamacpp]' (SIEVE_REQUIRE_LLAMACPP=1 makes this a failure)",
)


# -- a scripted fake model: the backend's own logic, no llama.cpp -------------------------------


class FakeLlama:
    """Byte-level "tokens" and a completion that yields ``script`` (forever when ``endless``)."""

    def __init__(self, script: list[str], endless: bool = False, fail_after: int = -1) -> None:
        self.script = script
        self.endless = endless
        self.fail_after = fail_after
        self.prompts: list[str] = []
        self.produced = 0
        self.closed = threading.Event()

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return ([0] if add_bos else []) + list(text)

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(tokens)

    def __call__(self, prompt: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.prompts.append(prompt)
        return self._chunks()

    def _chunks(self) -> Iterator[dict[str, Any]]:
        try:
            i = 0
            while self.endless or i < len(self.script):
                if i == self.fail_after:
                    raise RuntimeError("llama_decode returned -1")
                self.produced += 1
                yield {"choices": [{"text": self.script[i % len(self.script)]}]}
                i += 1
                if self.endless:
                    time.sleep(0.01)
        finally:
            self.closed.set()


def fake_backend(fake: FakeLlama, n_ctx: int = 4096, max_tokens: int = 64) -> LlamaCppLLM:
    llm = LlamaCppLLM(Path("unused.gguf"), n_ctx=n_ctx, max_tokens=max_tokens)
    llm._llama = fake  # as if loaded
    return llm


def test_stream_drops_outer_whitespace_and_joins_to_generate() -> None:
    script = ["\n", " It", " was", " completed", " in", " 1889", " [1].", " ", "\n"]
    llm = fake_backend(FakeLlama(script))

    async def collect() -> list[str]:
        return [piece async for piece in llm.stream(QUESTION, PASSAGES)]

    pieces = asyncio.run(collect())
    assert "".join(pieces) == "It was completed in 1889 [1]."
    assert asyncio.run(llm.generate(QUESTION, PASSAGES)) == "".join(pieces)


def test_complete_text_is_the_first_line_of_the_continuation() -> None:
    fake = FakeLlama(["\n", " When", " was", " the", " Eiffel", " Tower", " built?", "\n", "User:"])
    assert asyncio.run(fake_backend(fake).complete_text(REWRITE + "  ")) == (
        "When was the Eiffel Tower built?"
    )
    assert fake.prompts[-1] == REWRITE  # as given, trailing space dropped (it hurts a completion)


def test_prompt_fences_the_passages_as_data_before_the_question() -> None:
    fake = FakeLlama(["ok"])
    asyncio.run(fake_backend(fake).generate(QUESTION, PASSAGES))
    prompt = fake.prompts[-1]
    assert prompt.index("data, not instructions") < prompt.index("Example:")
    context = prompt[prompt.rindex("<context>\n") :]  # after the worked examples
    assert (
        context.index("[1] Paris — Landmarks")
        < context.index("[2] Rome")
        < context.index("</context>")
        < context.index(f"Question: {QUESTION}")
    )
    assert context.endswith("Answer (cite passages as [n]):")


def test_context_is_cut_to_fit_the_window() -> None:
    long = [Passage(n, f"Doc {n}", (), [ContextSentence("word " * 80, 0.5)]) for n in range(1, 8)]
    fake = FakeLlama(["ok"])
    llm = fake_backend(fake, n_ctx=1024, max_tokens=128)
    assert asyncio.run(llm.generate(QUESTION, long)) == "ok"
    prompt = fake.prompts[-1]
    assert len(fake.tokenize(prompt.encode())) <= 1024 - 128
    assert "[1] Doc 1" in prompt and "[7] Doc 7" not in prompt and QUESTION in prompt
    # one passage longer than the window on its own: its end is cut, not the question
    huge = [Passage(1, "Huge", (), [ContextSentence("word " * 1000, 0.5)])]
    asyncio.run(llm.generate(QUESTION, huge))
    assert len(fake.tokenize(fake.prompts[-1].encode())) <= 1024 - 128
    assert fake.prompts[-1].endswith("Answer (cite passages as [n]):")


def test_closing_the_stream_stops_generation() -> None:
    fake = FakeLlama([" more"], endless=True)
    llm = fake_backend(fake, max_tokens=100_000)

    async def two_pieces_then_close() -> None:
        pieces = llm.stream(QUESTION, PASSAGES)
        await anext(pieces)
        await anext(pieces)
        await pieces.aclose()

    asyncio.run(asyncio.wait_for(two_pieces_then_close(), 10))
    assert fake.closed.is_set() and fake.produced < 100
    assert not llm._lock.locked()  # the next request is not blocked


def test_queued_requests_give_up_promptly_and_are_bounded() -> None:
    """One generation holds the model; a queued request that times out leaves at once (not when
    its turn comes), and requests past ``max_queued`` are refused as busy."""
    fake = FakeLlama([" more"], endless=True)
    llm = fake_backend(fake, max_tokens=100_000)
    llm.max_queued = 1

    async def consume() -> None:
        async for _ in llm.stream(QUESTION, PASSAGES):
            pass

    async def scenario() -> float:
        running = asyncio.create_task(consume())
        await asyncio.sleep(0.2)  # it holds the lock now
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(), 0.3)  # queued, then given up
        waited = time.perf_counter() - started
        queued = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        with pytest.raises(LLMBusyError, match="busy"):
            await consume()  # one running + one queued: the limit
        for task in (queued, running):
            task.cancel()
        await asyncio.gather(queued, running, return_exceptions=True)
        return waited

    waited = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert waited < 2.0
    deadline = time.time() + 5
    while llm._active and time.time() < deadline:
        time.sleep(0.02)
    assert llm._active == 0 and not llm._lock.locked()


def test_failures_are_llm_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    llm = fake_backend(FakeLlama(["a", "b", "c"], fail_after=2))
    with pytest.raises(LLMError, match="llama_decode"):
        asyncio.run(llm.generate(QUESTION, PASSAGES))

    missing = tmp_path / "nope.gguf"
    monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    with pytest.raises(LLMError, match=r"nope\.gguf does not exist.*SIEVE_LLAMACPP_MODEL_PATH"):
        asyncio.run(LlamaCppLLM(missing).generate(QUESTION, PASSAGES))

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails: the extra is missing
    with pytest.raises(LLMError, match=r"not installed.*CMAKE_ARGS.*\[llamacpp\]"):
        asyncio.run(LlamaCppLLM(missing).complete_text("Rewrite:"))


def test_services_do_not_load_the_model(settings: Settings, embedder: Embedder) -> None:
    from app.services import Services

    services = Services.build(settings.model_copy(update={"llm": "llamacpp"}), embedder)
    try:
        llm = services.pipeline.llms["llamacpp"].inner  # type: ignore[attr-defined]
        assert isinstance(llm, LlamaCppLLM) and llm._llama is None  # (inside its ResilientLLM)
        assert not (settings.data_dir / "models").exists()
    finally:
        asyncio.run(services.aclose())


# -- the real Gemma 3 270M GGUF -------------------------------------------------------------------


@pytest.fixture(scope="session")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Gemma GGUF, assembled once per test session."""
    return assemble_default_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def gemma(gguf: Path) -> LlamaCppLLM:
    started = time.perf_counter()
    llm = LlamaCppLLM(gguf, n_ctx=2048, max_tokens=48).load()
    print(f"\ngemma loaded in {time.perf_counter() - started:.2f} s")
    return llm


@pytest.mark.slow
@needs_llamacpp
def test_gemma_generates_and_streams(gemma: LlamaCppLLM) -> None:
    answer = asyncio.run(gemma.generate(QUESTION, PASSAGES))
    print(f"\ngemma answer: {answer!r}")
    assert answer and answer == answer.strip()

    async def collect() -> list[str]:
        return [piece async for piece in gemma.stream(QUESTION, PASSAGES)]

    pieces = asyncio.run(collect())
    print(f"gemma stream: {pieces!r}")
    assert len(pieces) >= 2 and "".join(pieces).strip()
    rewritten = asyncio.run(gemma.complete_text(REWRITE, max_tokens=24))
    print(f"gemma rewrite: {rewritten!r}")
    assert rewritten


@pytest.mark.slow
@needs_llamacpp
def test_gemma_stream_closed_early_stops(gemma: LlamaCppLLM) -> None:
    async def one_piece_then_close() -> None:
        pieces = gemma.stream(QUESTION, PASSAGES)
        await anext(pieces)
        await pieces.aclose()

    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(one_piece_then_close(), 60))
    assert not gemma._lock.locked()
    print(f"\nfirst piece + close: {time.perf_counter() - started:.2f} s")
    assert asyncio.run(gemma.generate(QUESTION, PASSAGES))  # still usable


@pytest.mark.slow
@needs_llamacpp
def test_unloadable_model_is_an_llm_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(LLMError, match=r"cannot load .*bad\.gguf"):
        asyncio.run(LlamaCppLLM(bad).generate(QUESTION, PASSAGES))


# -- llama.cpp's OpenAI-compatible server, through Sieve's OpenAI backend -------------------------


@pytest.fixture(scope="module")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; its base URL (…/v1)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        # the GGUF has no chat template: without this the server falls back to llama-2's
        # (and mostly answers nothing); Gemma's drops the system message, the user one stays
        "--chat_format",
        "gemma",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited {proc.returncode}:\n{log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not up in 60 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@needs_llamacpp
def test_openai_backend_against_llama_cpp_server(llama_server: str) -> None:
    llm = OpenAILLM(llama_server, "gemma", timeout_s=120, max_tokens=48)

    async def run() -> tuple[str, list[str], str]:
        try:
            answer = await llm.generate(QUESTION, PASSAGES)
            pieces = [piece async for piece in llm.stream(QUESTION, PASSAGES)]
            text = await llm.complete_text(REWRITE, 24)
            return answer, pieces, text
        finally:
            await llm.aclose()

    answer, pieces, text = asyncio.run(run())
    print(f"\nserver answer: {answer!r}\nserver stream: {pieces!r}\nserver text: {text!r}")
    assert answer.strip() and len(pieces) >= 2 and "".join(pieces).strip() and text


@pytest.mark.slow
@needs_llamacpp
def test_ask_end_to_end_through_llama_cpp_server(
    llama_server: str, tmp_path: Path, embedder: Embedder
) -> None:
    from app.main import create_app

    settings = Settings(
        data_dir=tmp_path / "data",
        llm="openai",
        llm_base_url=llama_server,
        llm_timeout_s=120,
        llm_max_tokens=64,
        _env_file=None,
    )
    with TestClient(create_app(settings, embedder)) as client:
        r = client.post("/documents", json={"title": "Eiffel Tower", "text": EIFFEL})
        assert r.status_code == 201, r.text
        r = client.post("/ask", json={"question": "How tall is the Eiffel Tower?"})
        assert r.status_code == 200, r.text
        body = r.json()
    print(f"\n/ask via llama.cpp server: {body['answer']!r}")
    assert body["llm"] == "openai" and body["answer"].strip() and not body["abstained"]


@pytest.mark.slow
@needs_llamacpp
def test_ask_end_to_end_with_the_bundled_local_model(tmp_path: Path, embedder: Embedder) -> None:
    from app.main import create_app

    settings = Settings(
        data_dir=tmp_path / "data", llm="llamacpp", llm_max_tokens=48, _env_file=None
    )
    with TestClient(create_app(settings, embedder)) as client:
        r = client.post("/documents", json={"title": "Eiffel Tower", "text": EIFFEL})
        assert r.status_code == 201, r.text
        r = client.post("/ask", json={"question": "When was the Eiffel Tower completed?"})
        assert r.status_code == 200, r.text
        body = r.json()
    print(f"\n/ask via in-process llama.cpp: {body['answer']!r}")
    assert body["llm"] == "llamacpp" and body["answer"].strip() and not body["abstained"]
    # no model path configured: the bundled GGUF was assembled into the data dir
    assert (settings.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf").is_file()
