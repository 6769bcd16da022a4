"""Shared setup of the multi-tenancy tests over HTTP with auth on (test_access.py,
test_isolation.py): two collections A and B, a write key and one document in each, the helpers
that create collections, keys and uploads, and the check that nothing of B leaks into a response
to A. Real model, SQLite and FAISS; the extractive answer backend."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from index import Embedder

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


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


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


@pytest.fixture(name="tenants")
def tenants_fixture(tmp_path: Path, embedder: Embedder) -> Iterator[Tenants]:
    with TestClient(create_app(_settings(tmp_path), embedder)) as client:
        _collection(client, A)
        _collection(client, B)
        a_key, b_key = _key(client, [A]), _key(client, [B])
        a, b = _bearer(a_key["key"]), _bearer(b_key["key"])
        a_doc = _upload(client, a, A_DOC)
        b_doc = _upload(client, b, B_DOC)
        assert a_doc["collection"] == A and b_doc["collection"] == B
        yield Tenants(client, a, b, a_key, a_doc, b_doc)
