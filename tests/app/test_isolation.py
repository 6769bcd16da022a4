"""The isolation of one collection from another over HTTP with auth on: a key sees nothing of
another collection through any endpoint; an upload under a known external id replaces that
document, and a failed replacement restores it; with auth off, an upload creates its collection."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.collection import Collection
from tests.app.sse import parse_ndjson, parse_sse
from tests.app.tenants import (
    A_DOC,
    ADMIN_H,
    B_DOC,
    B_ENTITY,
    QUESTION,
    A,
    B,
    Reply,
    Tenants,
    _chat,
    _upload,
    tenants_fixture,  # noqa: F401  (the `tenants` fixture)
)

# ---- isolation ----------------------------------------------------------------------------


def _sse_ok(r: Reply) -> list[tuple[str | None, Any]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse_sse(r.text.splitlines())


def test_a_key_never_sees_another_collection(tenants: Tenants) -> None:
    """Key A through every endpoint, with questions that B's document answers: nothing of B
    (its facts, title, id, external id, collection name, entities) comes back."""
    client, a, clean = tenants.client, tenants.a, tenants.assert_clean
    a_id, b_id = tenants.a_doc["id"], tenants.b_doc["id"]

    # /ask: every retriever, JSON and SSE, with explain (seeds, subgraph, candidates)
    for retrieval in ("hybrid", "vector", "lexical", "graph"):
        r = client.post(
            "/ask",
            json={"question": QUESTION, "retrieval": retrieval, "explain": True},
            headers=a,
        )
        assert r.status_code == 200, r.text
        clean(r)
        assert {c["document_id"] for c in r.json()["citations"]} <= {a_id}
    r = client.post("/ask", json={"question": "Who made the thermocline lantern?"}, headers=a)
    clean(r, "thermocline")  # a question naming B's facts does not find them either
    events = _sse_ok(client.post("/ask", json={"question": QUESTION, "stream": True}, headers=a))
    assert events[-1][0] == "done"
    clean(client.post("/ask", json={"question": QUESTION, "stream": True}, headers=a))
    # the same question over B, as B's key, does find B's facts (the test can see a leak)
    r = client.post("/ask", json={"question": QUESTION}, headers=tenants.b)
    assert "Prattlewick" in r.json()["answer"]

    # OpenAI- and Ollama-compatible chat, JSON and streaming
    for body in (_chat(QUESTION), _chat(QUESTION, model=f"sieve:{A}")):
        r = client.post("/v1/chat/completions", json=body, headers=a)
        assert r.status_code == 200, r.text
        clean(r)
        r = client.post("/v1/chat/completions", json={**body, "stream": True}, headers=a)
        assert _sse_ok(r)[-1] == (None, "[DONE]")
        clean(r)
    for path, body in [
        ("/api/chat", _chat(QUESTION)),
        ("/api/chat", _chat(QUESTION, model=f"sieve:{A}")),
        ("/api/generate", {"prompt": QUESTION}),
        ("/api/generate", {"prompt": QUESTION, "model": f"sieve:{A}"}),
    ]:
        for stream in (True, False):
            r = client.post(path, json={**body, "stream": stream}, headers=a)
            assert r.status_code == 200, r.text
            assert parse_ndjson(r.text)[-1]["done"] is True
            clean(r)

    # documents: listing, and B's id through every document route
    r = client.get("/documents", headers=a)
    assert [d["id"] for d in r.json()["documents"]] == [a_id] and r.json()["total"] == 1
    clean(r)
    clean(client.get("/documents", params={"collection": A, "limit": 1000}, headers=a))
    for r in (
        client.get(f"/documents/{b_id}", headers=a),
        client.delete(f"/documents/{b_id}", headers=a),
        client.post("/documents/delete", json={"ids": [b_id]}, headers=a),
        client.post("/documents/delete", json={"ids": [a_id, b_id]}, headers=a),
    ):
        assert r.status_code == 404, r.text
        clean(r, b_id)  # "no document with id <the id sent>", nothing about it
    assert client.get(f"/documents/{a_id}", headers=a).status_code == 200  # all or nothing
    r = client.get(f"/documents/{b_id}", headers=tenants.b)
    assert r.status_code == 200 and r.json()["text"] == B_DOC["text"]  # B's doc is intact
    assert client.get("/documents", headers=tenants.b).json()["total"] == 1

    # the knowledge graph
    r = client.get("/graph/entities", params={"q": ""}, headers=a)
    assert r.status_code == 200 and r.json()["total"] >= 1
    clean(r)
    for q in ("prattlewick", B_ENTITY, "quelbrook"):
        r = client.get("/graph/entities", params={"q": q}, headers=a)
        assert r.status_code == 200 and r.json() == {"total": 0, "entities": []}
        r = client.get("/graph/neighbourhood", params={"entity": q}, headers=a)
        assert r.status_code == 404
        clean(r, q)
    r = client.get("/graph/neighbourhood", params={"entity": B_ENTITY}, headers=tenants.b)
    assert r.status_code == 200 and r.json()["mentioned_in"][0]["document_id"] == b_id
    r = client.get("/graph/neighbourhood", params={"entity": "oswin threnody"}, headers=a)
    assert r.status_code == 200
    clean(r)

    # ingestion jobs: B's is not found, and A's list holds only A's
    b_jobs = client.get("/jobs", headers=tenants.b).json()["jobs"]
    assert b_jobs and all(j["collection"] == B for j in b_jobs)
    for job in b_jobs:
        r = client.get(f"/jobs/{job['id']}", headers=a)
        assert r.status_code == 404
        clean(r, job["id"])
    r = client.get("/jobs", headers=a)
    assert r.status_code == 200 and all(j["collection"] == A for j in r.json()["jobs"])
    clean(r)
    assert client.get("/jobs", params={"collection": B}, headers=a).status_code == 403

    # model lists name only what the key can read
    r = client.get("/v1/models", headers=a)
    assert [m["id"] for m in r.json()["data"]] == ["sieve", f"sieve:{A}"]
    clean(r)
    r = client.get("/api/tags", headers=a)
    assert [m["name"] for m in r.json()["models"]] == ["sieve:latest", f"sieve:{A}"]
    clean(r)

    # operations: metrics are the admin's, and never name a collection; health has no counts
    r = client.get("/metrics", headers=a)
    assert r.status_code == 403
    clean(r)
    metrics = client.get("/metrics", headers=ADMIN_H)
    assert metrics.status_code == 200 and "sieve_http_requests_total" in metrics.text
    assert A not in metrics.text and B not in metrics.text
    r = client.get("/healthz", headers=a)
    assert r.json()["documents"] is None
    clean(r)

    # writing: B's external id and B's exact content, uploaded into A, touch nothing of B
    other = _upload(
        client, a, {"title": "A memo", "text": "Memo for A.", "external_id": "shared-ext"}
    )
    assert other["replaced"] is None and other["collection"] == A
    copy = _upload(client, a, {"title": "Copy", "text": B_DOC["text"]})
    assert not copy["duplicate"] and copy["id"] != b_id and copy["collection"] == A
    r = client.get(f"/documents/{b_id}", headers=tenants.b)
    assert r.status_code == 200 and r.json()["external_id"] == "shared-ext"
    assert client.get("/documents", headers=tenants.b).json()["total"] == 1


# ---- external ids -------------------------------------------------------------------------


def test_external_id_upload_replaces_the_document(tenants: Tenants) -> None:
    client, a = tenants.client, tenants.a
    old = _upload(
        client,
        a,
        {
            "title": "Office notes",
            "text": "The office coffee machine stands on the third floor.",
            "external_id": "office-notes",
        },
    )
    assert old["external_id"] == "office-notes" and old["replaced"] is None
    new = _upload(
        client,
        a,
        {
            "title": "Office notes",
            "text": "The office coffee machine stands on the seventh floor.",
            "external_id": "office-notes",
        },
    )
    assert new["replaced"] == old["id"] and new["id"] != old["id"] and not new["duplicate"]
    listing = client.get("/documents", headers=a).json()
    assert listing["total"] == 2  # A_DOC and the new notes
    assert {d["id"] for d in listing["documents"]} == {tenants.a_doc["id"], new["id"]}
    assert client.get(f"/documents/{old['id']}", headers=a).status_code == 404
    answer = client.post(
        "/ask", json={"question": "On which floor is the coffee machine?"}, headers=a
    ).json()
    assert "seventh" in answer["answer"] and "third" not in answer["answer"] + answer["context"]
    assert {c["document_id"] for c in answer["citations"]} == {new["id"]}
    for retrieval in ("vector", "lexical"):
        r = client.post(
            "/ask", json={"question": "third floor coffee", "retrieval": retrieval}, headers=a
        )
        assert "third" not in r.json()["context"], retrieval

    same = _upload(
        client,
        a,
        {
            "title": "Office notes",
            "text": "The office coffee machine stands on the seventh floor.",
            "external_id": "office-notes",
        },
    )
    assert same["duplicate"] and same["id"] == new["id"] and same["replaced"] is None

    # multipart: one external_id per file, in order
    files = [
        ("files", ("n1.txt", io.BytesIO(b"The office coffee machine stands in the basement."))),
        ("files", ("n2.txt", io.BytesIO(b"Parking is behind the building."))),
    ]
    r = client.post(
        "/documents",
        files=files,
        data={"external_id": ["office-notes", "parking"]},
        headers=a,
    )
    assert r.status_code == 201, r.text
    notes, parking = r.json()["documents"]
    assert notes["replaced"] == new["id"] and notes["external_id"] == "office-notes"
    assert parking["replaced"] is None and parking["external_id"] == "parking"
    assert client.get("/documents", headers=a).json()["total"] == 3

    # the content of another document under a new external id: 409, nothing changes
    r = client.post("/documents", json={**A_DOC, "external_id": "survey"}, headers=a)
    assert r.status_code == 409 and tenants.a_doc["id"] in r.json()["detail"]
    r = client.post(
        "/documents",
        json={
            "title": "x",
            "text": "Parking is behind the building.",
            "external_id": "office-notes",
        },
        headers=a,
    )
    assert r.status_code == 409
    assert client.get(f"/documents/{notes['id']}", headers=a).status_code == 200
    assert client.get("/documents", headers=a).json()["total"] == 3


def test_a_failed_replacement_restores_the_old_document(
    tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, a = tenants.client, tenants.a
    old = _upload(
        client,
        a,
        {"title": "Rota", "text": "The night porter is Brannoch Vell.", "external_id": "rota"},
    )

    def boom(self: Collection, per_document: object) -> None:
        raise RuntimeError("disk full while indexing")

    monkeypatch.setattr(Collection, "_add_derived", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        client.post(
            "/documents",
            json={
                "title": "Rota",
                "text": "The night porter is Tamsin Orr.",
                "external_id": "rota",
            },
            headers=a,
        )
    monkeypatch.undo()

    back = client.get(f"/documents/{old['id']}", headers=a)
    assert back.status_code == 200 and back.json()["external_id"] == "rota"
    assert back.json()["text"] == "The night porter is Brannoch Vell."
    assert client.get("/documents", headers=a).json()["total"] == 2
    for retrieval in ("vector", "lexical", "hybrid"):
        r = client.post(
            "/ask",
            json={"question": "Who is the night porter?", "retrieval": retrieval},
            headers=a,
        )
        assert "Brannoch Vell" in r.json()["answer"], retrieval
        assert "Tamsin" not in r.text
    found = client.get("/graph/entities", params={"q": "brannoch"}, headers=a).json()
    assert found["total"] == 1
    assert client.get("/graph/entities", params={"q": "tamsin"}, headers=a).json()["total"] == 0
    # and the replacement works once indexing does
    new = _upload(
        client,
        a,
        {"title": "Rota", "text": "The night porter is Tamsin Orr.", "external_id": "rota"},
    )
    assert new["replaced"] == old["id"]
    r = client.post("/ask", json={"question": "Who is the night porter?"}, headers=a)
    assert "Tamsin Orr" in r.json()["answer"] and "Brannoch" not in r.text


# ---- auth off ------------------------------------------------------------------------------


def test_without_auth_an_upload_creates_its_collection(client: TestClient) -> None:
    assert client.get("/healthz").json()["auth"] is False
    _upload(client, {}, A_DOC)  # into "default"
    r = client.post("/documents", params={"collection": "x"}, json=B_DOC)
    assert r.status_code == 201, r.text
    [doc] = r.json()["documents"]
    assert doc["collection"] == "x"
    assert [c["name"] for c in client.get("/admin/collections").json()] == ["default", "x"]
    only_x = client.post("/ask", json={"question": QUESTION, "collection": "x"}).json()
    assert "Prattlewick" in only_x["answer"]
    assert {c["document_id"] for c in only_x["citations"]} == {doc["id"]}
    r = client.post("/ask", json={"question": "Who mapped the salt caves?", "collection": "x"})
    assert "Threnody" not in r.text and "Marrowfen" not in r.text
    default = client.post("/ask", json={"question": QUESTION}).json()
    assert "Prattlewick" not in str(default) and "Quelbrook" not in str(default)
    assert client.get("/documents", params={"collection": "x"}).json()["total"] == 1
    assert client.get("/documents").json()["total"] == 1
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert models == ["sieve", "sieve:default", "sieve:x"]
    # multipart with a `collection` form field creates too
    r = client.post(
        "/documents",
        files=[("files", ("y.txt", io.BytesIO(b"Why not.")))],
        data={"collection": "y"},
    )
    assert r.status_code == 201 and r.json()["documents"][0]["collection"] == "y"
    assert client.post("/ask", json={"question": "x?", "collection": "nope"}).status_code == 404
