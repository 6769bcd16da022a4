"""The HTTP API end to end through TestClient, with the real model, SQLite and FAISS."""

from __future__ import annotations

import io
import threading
import time

from fastapi.testclient import TestClient
from fpdf import FPDF

from app.main import create_app
from app.settings import Settings
from index import Embedder

GUIDE = """# Cooking Guide

## Pasta
Boil four litres of water for every 400 grams of pasta. Salt the water generously.
Fresh pasta cooks in about three minutes. Dried pasta takes eight to twelve minutes.

## Bread
Bread dough needs to rise for at least one hour. A hot oven at 230 degrees gives a good crust.
"""

ASTRONOMY = (
    "The Moon orbits the Earth once every 27.3 days. Its surface is covered with craters. "
    "Mars has two small moons called Phobos and Deimos. Jupiter is the largest planet."
)


def _pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(
        0,
        8,
        "Warranty terms. The warranty on the X200 drill lasts five years. "
        "Batteries are covered for two years only.",
    )
    pdf.add_page()
    pdf.multi_cell(0, 8, "Service centres are open Monday to Friday.")
    return bytes(pdf.output())


def _upload(client: TestClient, *files: tuple[str, bytes]) -> dict:  # type: ignore[type-arg]
    r = client.post("/documents", files=[("files", (n, io.BytesIO(b))) for n, b in files])
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_upload_ask_citations_point_at_real_offsets(client: TestClient) -> None:
    body = _upload(client, ("guide.md", GUIDE.encode()), ("space.txt", ASTRONOMY.encode()))
    guide, space = body["documents"]
    assert (
        guide["title"] == "Cooking Guide" and guide["format"] == "md" and guide["chunk_count"] >= 2
    )
    assert space["duplicate"] is False

    r = client.post("/ask", json={"question": "How long does fresh pasta take to cook?"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert not answer["abstained"] and "[1]" in answer["answer"]
    assert "three minutes" in answer["context"]
    top = answer["citations"][0]
    assert top["document_id"] == guide["id"] and top["heading_path"][-1] == "Pasta"
    text = client.get(f"/documents/{guide['id']}").json()["text"]
    assert text == GUIDE
    for citation in answer["citations"]:
        doc_text = client.get(f"/documents/{citation['document_id']}").json()["text"]
        for s in citation["sentences"]:
            assert doc_text[s["start"] : s["end"]] == s["text"]
    stats = answer["stats"]
    assert stats["tokens_after"] <= stats["tokens_before"] and 0 <= stats["compression"] <= 1
    for citation in answer["citations"]:  # sent sentences carry an answer score, others none
        for s in citation["source"]:
            assert (s["answer_score"] is not None) == s["kept"]
            assert s["answer_score"] is None or 0 <= s["answer_score"] <= 1
    assert {"embed", "vector_search", "graph_search", "prune", "llm", "total"} <= set(
        stats["timings_ms"]
    )


def test_pdf_upload_answers_with_page(client: TestClient) -> None:
    [doc] = _upload(client, ("manual.pdf", _pdf_bytes()))["documents"]
    assert doc["format"] == "pdf"
    answer = client.post("/ask", json={"question": "How long is the drill warranty?"}).json()
    assert "five years" in answer["answer"]
    assert answer["citations"][0]["page"] == 1


def test_json_upload_dedup_and_delete(client: TestClient) -> None:
    payload = {"title": "Space", "text": ASTRONOMY, "metadata": {"team": "science"}}
    first = client.post("/documents", json=payload).json()["documents"][0]
    again = client.post("/documents", json=payload).json()["documents"][0]
    assert (
        again["duplicate"]
        and again["id"] == first["id"]
        and first["metadata"] == {"team": "science"}
    )
    assert client.get("/documents").json()["total"] == 1
    assert client.get("/healthz").json()["chunks"] == first["chunk_count"]

    assert client.delete(f"/documents/{first['id']}").status_code == 204
    assert client.get(f"/documents/{first['id']}").status_code == 404
    assert client.delete(f"/documents/{first['id']}").status_code == 404
    assert client.get("/healthz").json()["chunks"] == 0
    answer = client.post("/ask", json={"question": "How many moons does Mars have?"}).json()
    assert answer["abstained"] and answer["citations"] == [] and answer["context"] == ""


def test_irrelevant_question_abstains_without_llm(settings: Settings, embedder: Embedder) -> None:
    enabled = settings.model_copy(update={"llm_backends": "openai"})  # unreachable server
    with TestClient(create_app(enabled, embedder)) as client:
        _upload(client, ("space.txt", ASTRONOMY.encode()))
        r = client.post(
            "/ask",
            json={
                "question": "What is the VAT rate on restaurant bills?",
                "prune_threshold": 0.6,
                "llm": "openai",
            },
        )
    # abstaining skips the LLM, so the unreachable openai backend is never called
    assert (
        r.status_code == 200
        and r.json()["abstained"]
        and "llm" not in r.json()["stats"]["timings_ms"]
    )


def test_backends_not_enabled_are_refused(client: TestClient) -> None:
    assert client.get("/healthz").json()["llm_backends"] == ["extractive"]
    for name in ("openai", "llamacpp"):
        r = client.post("/ask", json={"question": "Who?", "llm": name})
        assert r.status_code == 422 and "unknown llm backend" in r.json()["detail"]
        r = client.post(
            "/v1/chat/completions",
            json={"llm": name, "messages": [{"role": "user", "content": "Who?"}]},
        )
        assert r.status_code == 422


def test_document_listing_and_detail(client: TestClient) -> None:
    _upload(
        client, ("a.txt", b"First file. It has two sentences."), ("b.txt", b"Second file here.")
    )
    listing = client.get("/documents", params={"limit": 1}).json()
    assert listing["total"] == 2 and len(listing["documents"]) == 1
    detail = client.get(f"/documents/{listing['documents'][0]['id']}").json()
    chunk = detail["chunks"][0]
    assert [s["text"] for s in chunk["sentences"]] == ["First file.", "It has two sentences."]


def test_openapi_docs_and_health(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/ask" in client.get("/openapi.json").json()["paths"]
    assert client.get("/healthz").json()["status"] == "ok"


def test_healthz_does_not_wait_for_a_graph_writer(client: TestClient) -> None:
    graph = client.app.state.services.default_collection.graph  # type: ignore[attr-defined]
    before = client.get("/healthz").json()["graph"]
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with graph.lock:  # as an ingest batch embedding its names would
            held.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    held.wait(5)
    started = time.perf_counter()
    r = client.get("/healthz")
    elapsed = time.perf_counter() - started
    release.set()
    t.join(5)
    assert r.status_code == 200 and r.json()["graph"] == before and elapsed < 2
