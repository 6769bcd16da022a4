"""What the hostile-input suites share (test_abuse.py, test_abuse_load.py): a collection with a
read and a write key on a server with auth on, and raw-socket helpers that send a request head
without its body."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from index import Embedder
from tests.app.tenants import ADMIN_H, _bearer, _collection, _key, _settings

COLLECTION = "public"
DOC = {"title": "Kettle manual", "text": "The kettle boils water in ninety seconds."}


class Keys:
    def __init__(self, client: TestClient) -> None:
        _collection(client, COLLECTION)
        self.read = _bearer(_key(client, [COLLECTION], "read")["key"])
        self.write = _bearer(_key(client, [COLLECTION], "write")["key"])


@pytest.fixture(name="keyed")
def keyed_fixture(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[TestClient, Keys]]:
    settings = _settings(
        tmp_path,
        max_document_chars=20_000,
        max_document_pages=5,
        max_document_paragraphs=500,
        max_document_chunks=30,
        max_job_chunks=40,
        parse_timeout_s=3.0,
    )
    with TestClient(create_app(settings, embedder)) as client:
        yield client, Keys(client)


def no_parsing(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_: object) -> None:
        raise AssertionError("the upload was parsed before the caller was authorised")

    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.uploads, "check", refuse)
    monkeypatch.setattr(services.uploads, "decode_json", refuse)


def nothing_stored(client: TestClient) -> None:
    listing = client.get(f"/documents?collection={COLLECTION}", headers=ADMIN_H).json()
    assert listing["total"] == 0, listing


def key_via_http(url: str, role: str) -> str:
    with httpx.Client(base_url=url, headers=ADMIN_H, timeout=30) as http:
        r = http.post("/admin/collections", json={"name": COLLECTION})
        assert r.status_code in (201, 409), r.text
        r = http.post("/admin/keys", json={"collections": [COLLECTION], "role": role})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])


def raw_request(url: str, head: str, timeout: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        return sock.recv(65536)
