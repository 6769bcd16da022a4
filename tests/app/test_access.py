"""API keys over HTTP with auth on: who gets 401, 403, 404 and 400, the admin-only routes, a
key's lifecycle, what a read key may not do, and the per-key rate limit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from index import Embedder
from tests.app.tenants import (
    A_DOC,
    ADMIN,
    ADMIN_H,
    QUESTION,
    A,
    B,
    Tenants,
    _bearer,
    _chat,
    _collection,
    _key,
    _settings,
    tenants_fixture,  # noqa: F401  (the `tenants` fixture)
)

UNKNOWN_KEY = "sieve_000000000000_" + "A" * 43  # well formed, never issued


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
    secret = key.removeprefix(created["prefix"])  # (the random part may itself hold "_")
    assert (
        len(secret) >= 16
        and secret not in listing.text
        and tenants.a["Authorization"][7:] not in listing.text
    )

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
