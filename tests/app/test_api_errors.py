"""Bad input gets a clear 4xx with a reason, and leaves nothing behind."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient


def _post(client: TestClient, *files: tuple[str, bytes]):  # type: ignore[no-untyped-def]
    return client.post("/documents", files=[("files", (n, io.BytesIO(b))) for n, b in files])


def _assert_nothing_stored(client: TestClient) -> None:
    assert client.get("/documents").json()["total"] == 0
    assert client.get("/healthz").json()["chunks"] == 0


@pytest.mark.parametrize(
    ("name", "data", "status", "reason"),
    [
        ("empty.txt", b"", 422, "empty"),
        ("blank.txt", b"   \n\n  ", 422, "whitespace"),
        ("bad.txt", b"caf\xe9 \xff\xfe au lait", 422, "UTF-8"),
        ("broken.pdf", b"%PDF-1.4\n garbage that is not a pdf", 422, "pdf"),
        ("notes.pdf", b"plain text pretending", 422, "pdf"),
        ("tool.exe", b"MZ\x90\x00binary", 415, "unsupported"),
        ("junk.txt", bytes(range(256)) * 4, 422, ""),
    ],
)
def test_bad_files_are_rejected_with_reason(
    client: TestClient, name: str, data: bytes, status: int, reason: str
) -> None:
    r = _post(client, (name, data))
    assert r.status_code == status, r.text
    assert reason.lower() in r.json()["detail"].lower()
    assert name in r.json()["detail"] or status == 415
    _assert_nothing_stored(client)


def test_one_bad_file_rejects_the_whole_upload(client: TestClient) -> None:
    r = _post(client, ("good.txt", b"A perfectly fine document."), ("bad.txt", b"\xff\xfe\xfa"))
    assert r.status_code == 422 and "bad.txt" in r.json()["detail"]
    _assert_nothing_stored(client)


def test_malformed_requests(client: TestClient) -> None:
    assert (
        client.post("/documents", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 400
    )
    assert client.post("/documents", files={"other": ("a.txt", b"hello")}).status_code == 400
    r = client.post(
        "/documents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = client.post("/documents", json={"title": "t", "text": "   "})
    assert r.status_code == 400 and "text" in r.json()["detail"]
    _assert_nothing_stored(client)


@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": "   "},
        {"question": "ok?", "top_k": 0},
        {"question": "ok?", "top_k": 100000},
        {"question": "ok?", "prune_threshold": -0.1},
        {"question": "ok?", "prune_threshold": 1.5},
        {"question": "ok?", "unknown_field": 1},
        {},
    ],
)
def test_bad_questions_are_422(client: TestClient, body: dict) -> None:  # type: ignore[type-arg]
    r = client.post("/ask", json=body)
    assert r.status_code == 422 and r.json()["detail"]


def test_unknown_llm_backend(client: TestClient) -> None:
    client.post("/documents", json={"title": "t", "text": "The sky is blue."})
    r = client.post("/ask", json={"question": "What colour is the sky?", "llm": "gpt-9"})
    assert r.status_code == 422 and "gpt-9" in r.json()["detail"]


def test_upload_size_limit(client: TestClient) -> None:
    client.app.state.services.settings.max_upload_mb = 0.001  # type: ignore[attr-defined]
    r = _post(client, ("big.txt", b"word " * 1000))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    _assert_nothing_stored(client)


def test_json_with_invalid_utf8_or_lone_surrogates(client: TestClient) -> None:
    r = client.post(
        "/documents",
        content=b'{"title": "t", "text": "caf\xe9"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    r = client.post(
        "/documents",
        content=b'{"title": "t", "text": "a \\ud800 b."}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "unicode" in r.json()["detail"].lower()
    r = client.post(
        "/ask",
        content=b'{"question": "why \\udfff?"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    _assert_nothing_stored(client)


def test_request_size_limit_is_checked_before_reading(client: TestClient) -> None:
    client.app.state.services.settings.max_request_mb = 0.001  # type: ignore[attr-defined]
    r = _post(client, ("big.txt", b"word " * 1000))
    assert r.status_code == 413 and "request" in r.json()["detail"]
    _assert_nothing_stored(client)


def test_a_licence_file_without_a_known_extension_is_uploaded_as_text(client: TestClient) -> None:
    """A stranger uploaded Debian's 'Apache-2.0' licence file and got 415 ('.0'): plain text
    that nothing names is read as text."""
    text = b"Apache License\n\nYou may reproduce and distribute copies of the Work."
    r = client.post(
        "/documents",
        files=[("files", ("Apache-2.0", io.BytesIO(text), "application/octet-stream"))],
    )
    assert r.status_code == 201, r.text
    [doc] = r.json()["documents"]
    assert (doc["title"], doc["format"], doc["source"]) == ("Apache License", "txt", "Apache-2.0")
