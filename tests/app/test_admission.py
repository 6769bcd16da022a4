"""Admission control: past ``max_pending_asks`` questions in progress, new ones get a 503 with
Retry-After at once (every endpoint), instead of queueing behind a CPU-bound pruner."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.live_server import live_server
from tests.app.stub_llm import StubServer

DOC = {"title": "Kessel Point", "text": "The lighthouse at Kessel Point was built in 1871."}
Q = "When was the lighthouse at Kessel Point built?"


def test_questions_past_the_limit_get_503(
    stub_llm: StubServer, tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm="openai",
        llm_base_url=stub_llm.base_url,
        llm_retries=0,
        max_pending_asks=1,
        _env_file=None,
    )
    saved = stub_llm.delay_s
    stub_llm.delay_s = 2.0  # the first question holds its slot while the LLM "thinks"
    try:
        with live_server(create_app(settings, embedder)) as url:
            httpx.post(f"{url}/documents", json=DOC, timeout=60)
            first: dict[str, int] = {}
            t = threading.Thread(
                target=lambda: first.update(
                    status=httpx.post(f"{url}/ask", json={"question": Q}, timeout=60).status_code
                )
            )
            t.start()
            time.sleep(1.0)
            started = time.perf_counter()
            r = httpx.post(f"{url}/ask", json={"question": Q})
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            assert "being answered" in r.json()["detail"]
            assert time.perf_counter() - started < 0.5  # refused at once, not queued
            r = httpx.post(f"{url}/ask", json={"question": Q, "stream": True})
            assert r.status_code == 503  # before the stream starts
            chat = {"messages": [{"role": "user", "content": Q}], "stream": True}
            r = httpx.post(f"{url}/v1/chat/completions", json=chat)
            assert r.status_code == 503 and r.json()["error"]["code"] == 503
            assert httpx.get(f"{url}/healthz").status_code == 200  # not a question
            t.join(30)
            assert first["status"] == 200
            assert httpx.post(f"{url}/ask", json={"question": Q}, timeout=60).status_code == 200
    finally:
        stub_llm.delay_s = saved
