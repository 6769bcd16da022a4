"""Multi-tenancy over HTTP with auth on: API keys (401/403/404/400), their lifecycle, the rate
limit, replacement by external id, and the isolation of one collection from another through
every endpoint. Real model, SQLite and FAISS; the extractive answer backend."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

from app.library import Library
from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.sse import parse_ndjson, parse_sse

ADMIN = "admin-key-for-tenancy-tests-0123"
A, B = "zorblat", "quixmire"  # collection names that nothing else in a response can contain
A_DOC = {
    "title": "Marrowfen survey",
    "text": "The cartographer Oswin Threnody mapped the salt caves of Marrowfen in 1704. "
    "He drew every tunnel by the light of an oil lantern.",
}
B_DOC = {
    "title": "Quelbrook lantern chronicle",
    "text": "Ysolde Prattlewick invented the thermocline lantern in 1632. "
    "She blew the glass for it in the town of Quelbrook. "
    "Prattlewick lanterns still light the Quelbrook harbour.",
    "external_id": "shared-ext",
}
B_ENTITY = "ysolde prattlewick"  # the graph's key for B's inventor
# close to B's facts, without naming any of them (chat answers echo the question)
QUESTION = "Who invented the glass lantern, and in which town was it made?"
UNKNOWN_KEY = "sieve_000000000000_" + "A" * 43  # well formed, never issued


class _Sent(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> object: ...


class Reply(Protocol):
    """What the tests read of a TestClient response (httpx's or httpx2's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def request(self) -> _Sent: ...


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN_H = _bearer(ADMIN)


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth=True,
        admin_key=ADMIN,
        _env_file=None,
        **{"rate_limit_per_s": 0, **extra},
    )


def _collection(client: TestClient, name: str) -> None:
    r = client.post("/admin/collections", json={"name": name}, headers=ADMIN_H)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name and r.json()["documents"] == 0


def _key(client: TestClient, collections: list[str], role: str = "write") -> dict[str, Any]:
    r = client.post(
        "/admin/keys",
        json={"collections": collections, "role": role, "name": f"{role} {collections}"},
        headers=ADMIN_H,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _upload(client: TestClient, headers: dict[str, str], doc: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/documents", json=doc, headers=headers)
    assert r.status_code == 201, r.text
    [out] = r.json()["documents"]
    assert isinstance(out, dict)
    return out


@dataclass(frozen=True)
class Tenants:
    client: TestClient
    a: dict[str, str]  # headers of a write key on A only
    b: dict[str, str]  # headers of a write key on B only
    a_key: dict[str, Any]
    a_doc: dict[str, Any]
    b_doc: dict[str, Any]

    def secrets(self) -> list[str]:
        """Everything of B that A's responses must never contain (lower case)."""
        words = ["Prattlewick", "Ysolde", "Quelbrook", "thermocline", B]
        return [w.lower() for w in [*words, self.b_doc["id"], B_DOC["title"], "shared-ext"]]

    def assert_clean(self, r: Reply, *echoed: str) -> None:
        """No secret of B in the body; ``echoed``: what the request itself sent (an error
        message may quote it back)."""
        body = r.text.lower()
        for e in echoed:
            body = body.replace(e.lower(), "")
        leaked = [s for s in self.secrets() if s in body]
        assert not leaked, f"{r.request.method} {r.request.url}: {leaked} in {r.text[:500]}"


@pytest.fixture
def tenants(tmp_path: Path, embedder: Embedder) -> Iterator[Tenants]:
    with TestClient(create_app(_settings(tmp_path), embedder)) as client:
        _collection(client, A)
        _collection(client, B)
        a_key, b_key = _key(client, [A]), _key(client, [B])
        a, b = _bearer(a_key["key"]), _bearer(b_key["key"])
        a_doc = _upload(client, a, A_DOC)
        b_doc = _upload(client, b, B_DOC)
        assert a_doc["collection"] == A and b_doc["collection"] == B
        yield Tenants(client, a, b, a_key, a_doc, b_doc)


# ---- authentication ------------------------------------------------------------------------

KEYED = [
    ("POST", "/ask", {"question": QUESTION}),
    ("GET", "/documents", None),
    ("POST", "/documents", A_DOC),
    ("GET", "/graph/entities", None),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
    ("GET", "/v1/models", None),
    ("POST", "/api/chat", {"messages": [{"role": "user", "content": QUESTION}]}),
    ("GET", "/api/tags", None),
    ("GET", "/admin/keys", None),
    ("GET", "/metrics", None),
]


BAD_AUTHORIZATION = [
    None,
    "",
    "Bearer",
    f"Basic {ADMIN}",
    f"Bearer {UNKNOWN_KEY}",
    f"Bearer {ADMIN}x",
    f"Bearer {ADMIN[:-1]}",
    "x" * 300,
]


def test_missing_or_invalid_key_is_401(tenants: Tenants) -> None:
    for authorization in BAD_AUTHORIZATION:
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, path, body in KEYED:
            r = tenants.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (authorization, path, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert ADMIN not in r.text
        # /healthz stays public, without the counts
        health = tenants.client.get("/healthz", headers=headers).json()
        assert health["status"] == "ok" and health["auth"] is True
        assert health["documents"] is None and health["graph"] is None
    # the refusals wrote nothing
    assert _total(tenants.client, A) == 1


def _total(client: TestClient, collection: str) -> int:
    r = client.get("/documents", params={"collection": collection}, headers=ADMIN_H)
    total: int = r.json()["total"]
    return total


def test_admin_only_routes_refuse_api_keys(tenants: Tenants) -> None:
    client, own_id = tenants.client, tenants.a_key["id"]
    for method, path, body in [
        ("GET", "/admin/collections", None),
        ("POST", "/admin/collections", {"name": "mine"}),
        ("GET", "/admin/keys", None),
        ("POST", "/admin/keys", {"collections": [A], "role": "write"}),
        ("DELETE", f"/admin/keys/{own_id}", None),
        ("GET", "/metrics", None),
    ]:
        r = client.request(method, path, json=body, headers=tenants.a)
        assert r.status_code == 403, (path, r.text)
    assert client.get("/documents", headers=tenants.a).status_code == 200  # not revoked
    assert [c["name"] for c in client.get("/admin/collections", headers=ADMIN_H).json()] == [
        "default",
        B,
        A,
    ]
    # /healthz shows the counts to the admin only
    assert client.get("/healthz", headers=tenants.a).json()["documents"] is None
    assert client.get("/healthz", headers=ADMIN_H).json()["documents"] == 2


def test_key_lifecycle(tenants: Tenants) -> None:
    client = tenants.client
    created = _key(client, [A], "read")
    key, key_id = created["key"], created["id"]
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < len(key) // 2
    assert created["role"] == "read" and created["collections"] == [A]
    assert created["revoked_at"] is None
    assert client.get("/documents", headers=_bearer(key)).json()["total"] == 1

    listing = client.get("/admin/keys", headers=ADMIN_H)
    assert listing.status_code == 200
    listed = {k["id"]: k for k in listing.json()}
    assert listed[key_id]["prefix"] == created["prefix"] and "key" not in listed[key_id]
    secret = key.rsplit("_", 1)[-1]
    assert secret not in listing.text and tenants.a["Authorization"][7:] not in listing.text

    revoked = client.delete(f"/admin/keys/{key_id}", headers=ADMIN_H)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    r = client.get("/documents", headers=_bearer(key))  # at once, no cache delay
    assert r.status_code == 401 and "www-authenticate" in r.headers
    assert client.post("/ask", json={"question": QUESTION}, headers=_bearer(key)).status_code == 401
    again = client.delete(f"/admin/keys/{key_id}", headers=ADMIN_H)  # idempotent
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    listed = {k["id"]: k for k in client.get("/admin/keys", headers=ADMIN_H).json()}
    assert listed[key_id]["revoked_at"] is not None
    assert listed[tenants.a_key["id"]]["revoked_at"] is None  # the others keep working
    assert client.get("/documents", headers=tenants.a).status_code == 200

    assert client.delete("/admin/keys/000000000000", headers=ADMIN_H).status_code == 404
    bad = [
        ({"collections": ["nope"], "role": "read"}, 404),
        ({"collections": [A, "nope"], "role": "write"}, 404),
        ({"collections": [A], "role": "admin"}, 422),
        ({"collections": [], "role": "read"}, 422),
    ]
    for body, status in bad:
        assert client.post("/admin/keys", json=body, headers=ADMIN_H).status_code == status, body
    assert client.post("/admin/collections", json={"name": A}, headers=ADMIN_H).status_code == 409
    for name in ("Bad Name", "", "-x", "a" * 65):
        r = client.post("/admin/collections", json={"name": name}, headers=ADMIN_H)
        assert r.status_code == 422, name


# ---- scope --------------------------------------------------------------------------------


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


def test_naming_a_collection_out_of_scope_is_403(tenants: Tenants) -> None:
    client = tenants.client
    # B exists, "nowhere" does not: the same answer, so a key cannot probe for names
    for name in (B, "nowhere", "default"):
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/ask", {"json": {"question": QUESTION, "collection": name}}),
            ("POST", "/ask", {"json": {"question": QUESTION, "collection": name, "stream": True}}),
            ("GET", "/documents", {"params": {"collection": name}}),
            ("POST", "/documents", {"json": {**A_DOC, "collection": name}}),
            ("POST", "/documents", {"params": {"collection": name}, "json": A_DOC}),
            (
                "POST",
                "/documents",
                {
                    "files": [("files", ("a.txt", io.BytesIO(b"Some text.")))],
                    "data": {"collection": name},
                },
            ),
            ("GET", "/graph/entities", {"params": {"collection": name, "q": ""}}),
            ("GET", "/graph/neighbourhood", {"params": {"collection": name, "entity": "x"}}),
            ("POST", "/v1/chat/completions", {"json": _chat(QUESTION, collection=name)}),
            ("POST", "/v1/chat/completions", {"json": _chat(QUESTION, model=f"sieve:{name}")}),
            (
                "POST",
                "/v1/chat/completions",
                {"json": _chat(QUESTION, model=f"sieve:{name}", stream=True)},
            ),
            ("POST", "/api/chat", {"json": _chat(QUESTION, model=f"sieve:{name}")}),
            ("POST", "/api/chat", {"json": _chat(QUESTION, collection=name, stream=False)}),
            ("POST", "/api/generate", {"json": {"prompt": QUESTION, "model": f"sieve:{name}"}}),
            ("POST", "/api/generate", {"json": {"prompt": QUESTION, "collection": name}}),
        ]
        for method, path, kwargs in requests:
            r = client.request(method, path, headers=tenants.a, **kwargs)
            assert r.status_code == 403, (name, path, kwargs, r.text)
            tenants.assert_clean(r, name)
    # nothing was written anywhere
    counts = {
        c["name"]: c["documents"] for c in client.get("/admin/collections", headers=ADMIN_H).json()
    }
    assert counts == {"default": 0, A: 1, B: 1}


def test_admin_gets_404_for_an_unknown_collection(tenants: Tenants) -> None:
    client = tenants.client
    r = client.post("/ask", json={"question": QUESTION, "collection": "nowhere"}, headers=ADMIN_H)
    assert r.status_code == 404
    r = client.post("/documents", json={**A_DOC, "collection": "nowhere"}, headers=ADMIN_H)
    assert r.status_code == 404  # only the local operator (auth off) creates by uploading
    assert client.get("/documents", params={"collection": B}, headers=ADMIN_H).json()["total"] == 1


def test_a_key_of_several_collections_must_name_one(tenants: Tenants) -> None:
    client = tenants.client
    both = _bearer(_key(client, [A, B], "read")["key"])
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/ask", {"json": {"question": QUESTION}}),
        ("GET", "/documents", {}),
        ("GET", "/graph/entities", {}),
        ("POST", "/v1/chat/completions", {"json": _chat(QUESTION)}),
        ("POST", "/api/chat", {"json": _chat(QUESTION, stream=False)}),
        ("POST", "/api/generate", {"json": {"prompt": QUESTION, "stream": False}}),
    ]
    for method, path, kwargs in refused:
        r = client.request(method, path, headers=both, **kwargs)
        assert r.status_code == 400, (path, r.text)
        assert A in r.json()["detail"] and B in r.json()["detail"]
    docs = client.get("/documents", params={"collection": B}, headers=both).json()
    assert [d["id"] for d in docs["documents"]] == [tenants.b_doc["id"]]
    answer = client.post("/ask", json={"question": QUESTION, "collection": B}, headers=both).json()
    assert "Prattlewick" in answer["answer"]
    models = client.get("/v1/models", headers=both).json()["data"]
    assert [m["id"] for m in models] == ["sieve", f"sieve:{B}", f"sieve:{A}"]
    r = client.post("/documents", json={**A_DOC, "collection": A}, headers=both)
    assert r.status_code == 403  # a read key


def test_a_read_key_cannot_upload(tenants: Tenants) -> None:
    client = tenants.client
    reader = _bearer(_key(client, [A], "read")["key"])
    assert client.get("/documents", headers=reader).json()["total"] == 1
    assert client.get(f"/documents/{tenants.a_doc['id']}", headers=reader).status_code == 200
    r = client.post("/ask", json={"question": "Who mapped the salt caves?"}, headers=reader)
    assert "Oswin Threnody" in r.json()["answer"]
    uploads: list[dict[str, Any]] = [
        {"json": {"title": "New", "text": "Reader notes."}},
        {"json": {"title": "New", "text": "Reader notes.", "collection": A}},
        {"files": [("files", ("n.txt", io.BytesIO(b"Reader notes.")))]},
    ]
    for kwargs in uploads:
        r = client.post("/documents", headers=reader, **kwargs)
        assert r.status_code == 403, r.text
    r = client.delete(f"/documents/{tenants.a_doc['id']}", headers=reader)
    assert r.status_code in (403, 404)
    r = client.post("/documents/delete", json={"ids": [tenants.a_doc["id"]]}, headers=reader)
    assert r.status_code in (403, 404)
    assert client.get("/documents", headers=tenants.a).json()["total"] == 1  # all still there


def test_a_read_key_deleting_gets_403(tenants: Tenants) -> None:
    reader = _bearer(_key(tenants.client, [A], "read")["key"])
    r = tenants.client.delete(f"/documents/{tenants.a_doc['id']}", headers=reader)
    assert r.status_code == 403, r.text


# ---- rate limit ---------------------------------------------------------------------------


def test_rate_limit_is_per_key_with_retry_after(tmp_path: Path, embedder: Embedder) -> None:
    settings = _settings(tmp_path, rate_limit_per_s=0.01, rate_limit_burst=3)
    with TestClient(create_app(settings, embedder)) as client:
        _collection(client, A)  # the admin's own bucket: 3 requests
        first, second = _bearer(_key(client, [A])["key"]), _bearer(_key(client, [A])["key"])
        assert (
            client.post("/admin/collections", json={"name": B}, headers=ADMIN_H).status_code == 429
        )
        for _ in range(3):
            assert client.get("/documents", headers=first).status_code == 200
        r = client.get("/documents", headers=first)
        assert r.status_code == 429 and "rate limit" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1
        r = client.post("/ask", json={"question": QUESTION}, headers=first)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert client.get("/documents", headers=second).status_code == 200  # its own bucket
        # refusals before the key is known cost no tokens and are 401, not 429
        assert client.get("/documents", headers=_bearer(UNKNOWN_KEY)).status_code == 401
        assert client.get("/healthz").status_code == 200  # public, not limited


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

    def boom(self: Library, per_document: object) -> None:
        raise RuntimeError("disk full while indexing")

    monkeypatch.setattr(Library, "_add_derived", boom)
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
