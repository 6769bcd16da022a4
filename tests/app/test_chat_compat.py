"""The OpenAI- and Ollama-compatible chat endpoints, driven by the official ``openai`` client
and plain HTTP against a live uvicorn server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.live_server import live_server
from tests.app.sse import parse_ndjson
from tests.app.stub_llm import StubServer

DOCS = [
    {
        "title": "Nightfall Harbor",
        "text": "Nightfall Harbor is a 2011 drama film directed by Orla Venkatesan. "
        "It was shot in the fishing town of Skarvik over one winter.",
    },
    {
        "title": "Orla Venkatesan",
        "text": "Orla Venkatesan is a film director. She trained as a painter at the Brevik "
        "Institute in Bergen before turning to cinema.",
    },
    {
        "title": "Bread",
        "text": "Bread dough needs to rise for at least one hour. A hot oven gives a good crust.",
    },
]
FIRST = "Who directed Nightfall Harbor?"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    data = tmp_path_factory.mktemp("chat") / "data"
    settings = Settings(data_dir=data, _env_file=None)  # type: ignore[call-arg]
    with live_server(create_app(settings, embedder)) as url:
        for doc in DOCS:
            assert httpx.post(f"{url}/documents", json=doc, timeout=60).status_code == 201
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["sieve", "sieve:default"]


def test_completion_cites_in_text_and_extra_field(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="any-name", messages=[{"role": "user", "content": FIRST}]
    )
    assert r.model == "any-name" and r.choices[0].finish_reason == "stop"
    text = r.choices[0].message.content or ""
    assert "Orla Venkatesan" in text and "[1]" in text and "\n\nSources:\n[1] " in text
    extra = r.model_extra["sieve"]  # type: ignore[index]
    assert extra["rewritten"] == "none" and extra["citations"][0]["title"] == "Nightfall Harbor"
    assert r.usage is not None and r.usage.prompt_tokens == extra["stats"]["tokens_after"] > 0


def test_streaming_equals_non_streaming(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": FIRST}]
    plain = client.chat.completions.create(model="sieve", messages=messages)  # type: ignore[arg-type]
    chunks = list(client.chat.completions.create(model="sieve", messages=messages, stream=True))  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert text.strip() == (plain.choices[0].message.content or "").strip()
    assert chunks[-1].model_extra["sieve"]["citations"]  # type: ignore[index]


def test_follow_up_is_rewritten_with_the_heuristic(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="sieve", messages=[{"role": "user", "content": FIRST}]
    )
    follow = client.chat.completions.create(
        model="sieve",
        messages=[
            {"role": "user", "content": FIRST},
            {"role": "assistant", "content": first.choices[0].message.content or ""},
            {"role": "user", "content": [{"type": "text", "text": "Where did she train?"}]},
        ],
    )
    extra = follow.model_extra["sieve"]  # type: ignore[index]
    assert extra["rewritten"] == "heuristic" and "Orla Venkatesan" in extra["question"]
    assert "Brevik Institute" in (follow.choices[0].message.content or "")


def test_openai_errors_are_4xx_with_openai_shape(client: openai.OpenAI, base_url: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="last message must be the user"):
        client.chat.completions.create(
            model="sieve", messages=[{"role": "assistant", "content": "hi"}]
        )
    r = httpx.post(f"{base_url}/v1/chat/completions", json={"model": "x", "messages": []})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"


def test_ollama_tags_show_version(base_url: str) -> None:
    tags = httpx.get(f"{base_url}/api/tags").json()
    assert tags["models"][0]["name"] == "sieve:latest"
    assert httpx.get(f"{base_url}/api/version").json()["version"]
    assert httpx.post(f"{base_url}/api/show", json={"model": "sieve"}).status_code == 200


def test_ollama_chat_streams_ndjson(base_url: str) -> None:
    body = {"model": "sieve:latest", "messages": [{"role": "user", "content": FIRST}]}
    with httpx.stream("POST", f"{base_url}/api/chat", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"] is True
    text = "".join(line["message"]["content"] for line in lines)
    assert "Orla Venkatesan" in text and "Sources:" in text
    assert lines[-1]["sieve"]["citations"] and lines[-1]["eval_count"] > 0
    plain = httpx.post(f"{base_url}/api/chat", json={**body, "stream": False}, timeout=60).json()
    assert plain["done"] and plain["message"]["content"].strip() == text.strip()


def test_ollama_accepts_json_whatever_the_content_type(base_url: str) -> None:
    """Like Ollama: `curl URL -d '{...}'` sends form-urlencoded, and must still work."""
    body = json.dumps({"stream": False, "messages": [{"role": "user", "content": FIRST}]})
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = httpx.post(f"{base_url}/api/chat", content=body, headers=form, timeout=60)
    assert r.status_code == 200 and "Orla Venkatesan" in r.json()["message"]["content"]
    r = httpx.post(f"{base_url}/api/chat", content=b"{not json", headers=form)
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    r = httpx.post(f"{base_url}/api/show", content=b"", headers=form)
    assert r.status_code == 200
    schema = httpx.get(f"{base_url}/openapi.json").json()
    assert "messages" in json.dumps(schema["paths"]["/api/chat"]["post"]["requestBody"])


def test_ollama_generate(base_url: str) -> None:
    loaded = httpx.post(f"{base_url}/api/generate", json={"model": "sieve"}).json()
    assert loaded["done"] and loaded["done_reason"] == "load"
    r = httpx.post(f"{base_url}/api/generate", json={"model": "sieve", "prompt": FIRST}, timeout=60)
    lines = parse_ndjson(r.text)
    assert lines[-1]["done"] and "Orla" in "".join(line["response"] for line in lines)
    r = httpx.post(f"{base_url}/api/chat", json={"messages": [{"role": "bot", "content": "x"}]})
    assert r.status_code == 422 and "role" in r.json()["error"]


def test_follow_up_rewritten_by_the_llm(
    stub_llm: StubServer, tmp_path: Path, embedder: Embedder
) -> None:
    rewritten = "Where did Orla Venkatesan train as a painter?"

    def reply(body: dict[str, object]) -> str:
        prompt = json.dumps(body["messages"])
        return rewritten if "Standalone question:" in prompt else "At the Brevik Institute [1]."

    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", llm="openai", llm_base_url=stub_llm.base_url, _env_file=None
    )
    stub_llm.content = reply
    try:
        with TestClient(create_app(settings, embedder)) as c:
            for doc in DOCS:
                c.post("/documents", json=doc)
            body = {
                "messages": [
                    {"role": "user", "content": FIRST},
                    {"role": "assistant", "content": "Orla Venkatesan [1]."},
                    {"role": "user", "content": "Where did she train?"},
                ]
            }
            r = c.post("/v1/chat/completions", json=body).json()
    finally:
        stub_llm.content = " In Paris [1]. "
    assert r["sieve"]["rewritten"] == "llm" and r["sieve"]["question"] == rewritten
    assert r["choices"][0]["message"]["content"].startswith("At the Brevik Institute [1].")
    assert r["sieve"]["citations"][0]["title"] == "Orla Venkatesan"
