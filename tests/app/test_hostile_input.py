"""Hostile requests over HTTP: a clear 4xx with a reason, bounded work, nothing stored.

Body size caps (app/api/limits.py) on every route, the malformed-file corpus uploaded for
real, path-like file names, and numbers JSON should not carry (NaN, Infinity, 10**30).
"""

from __future__ import annotations

import io
import json
import select
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app import malformed
from tests.app.live_server import live_server

KB = 1024


def _limit_json(client: TestClient, mb: float) -> None:
    client.app.state.services.settings.max_json_mb = mb  # type: ignore[attr-defined]


def _assert_nothing_stored(client: TestClient) -> None:
    assert client.get("/documents").json()["total"] == 0
    assert client.get("/healthz").json()["chunks"] == 0


def _chunks(total: int, size: int = 4 * KB) -> Iterator[bytes]:
    """A JSON body sent chunked (no Content-Length): only counting can stop it."""
    yield b'{"question": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ask", {"question": "q" * 50_000}),
        ("/documents/delete", {"ids": ["x" * 40] * 2000}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q" * 50_000}]}),
        ("/api/chat", {"messages": [{"role": "user", "content": "q" * 50_000}]}),
    ],
)
def test_json_bodies_over_max_json_mb_get_413(client: TestClient, path: str, body: dict) -> None:  # type: ignore[type-arg]
    _limit_json(client, 0.03)  # ~31 KB
    r = client.post(path, json=body)
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "over the 31457-byte limit (max_json_mb)" in detail
    if path.startswith("/v1/"):
        assert r.json()["error"] == {
            "message": detail,
            "type": "invalid_request_error",
            "code": 413,
        }
    elif path.startswith("/api/"):
        assert r.json()["error"] == detail


def test_chunked_body_is_counted_while_it_streams(client: TestClient) -> None:
    _limit_json(client, 0.03)
    r = client.post("/ask", content=_chunks(64 * KB), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_json_mb" in r.json()["detail"]
    # under the limit, a chunked body reaches the route as usual (422: the question is too long)
    r = client.post("/ask", content=_chunks(8 * KB), headers={"content-type": "application/json"})
    assert r.status_code == 422 and "question" in r.json()["detail"]


def _send_chunked(base_url: str, path: str, total: int) -> tuple[bytes, int]:
    """Stream a chunked body of up to ``total`` bytes over a raw socket, stopping as soon as
    the server answers; returns the start of the answer and how many bytes were sent."""
    host, port = base_url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (64 * KB, b"a" * 64 * KB)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b'e\r\n{"question": "\r\n')
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                sock.sendall(chunk)
            except OSError:  # it closed the connection: the answer is waiting
                break
            sent += 64 * KB
        return sock.recv(4096), sent


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/ask", b"(max_json_mb)"), ("/documents", b"over the 1048576-byte limit")],
)
def test_live_server_stops_a_chunked_body_early(
    settings: Settings, embedder: Embedder, path: str, reason: bytes
) -> None:
    """Through uvicorn and a real socket: a 1 GB chunked body is refused after a few MB (a JSON
    upload is cut at max_upload_mb as it streams in, not buffered up to max_request_mb)."""
    settings.max_upload_mb = 1.0
    app = create_app(settings, embedder)
    with live_server(app) as base_url:
        started = time.perf_counter()
        answer, sent = _send_chunked(base_url, path, 1024 * 1024 * KB)
        seconds = time.perf_counter() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert reason in answer
    assert sent < 64 * 1024 * KB and seconds < 20  # the 2 MB limit plus socket buffers


def test_chunked_upload_over_max_request_mb(client: TestClient) -> None:
    client.app.state.services.settings.max_request_mb = 0.03  # type: ignore[attr-defined]
    body = json.dumps({"title": "t", "text": "word " * 20_000}).encode()
    r = client.post(
        "/documents",
        content=iter([body[i : i + 4096] for i in range(0, len(body), 4096)]),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and "max_request_mb" in r.json()["detail"]
    _assert_nothing_stored(client)


def test_uploads_have_their_own_larger_limit(client: TestClient) -> None:
    _limit_json(client, 0.01)  # 10 KB: the upload below is twice that
    text = b"Sieve keeps uploads apart from questions. " * 500
    r = client.post("/documents", files=[("files", ("big.txt", io.BytesIO(text)))])
    assert r.status_code == 201, r.text


UPLOADS = [
    ("half.pdf", malformed.truncated_pdf, 422, "not a readable PDF"),
    ("locked.pdf", malformed.encrypted_pdf, 422, "encrypted"),
    ("archive.pdf", malformed.plain_zip, 422, "zip archive"),
    ("archive.docx", malformed.plain_zip, 422, "not a Word .docx"),
    ("bomb.docx", lambda: malformed.docx_bomb(40), 422, "limit"),
    ("laughs.docx", malformed.docx_entity_expansion, 422, "not a readable .docx"),
    ("junk.txt", lambda: malformed.random_bytes(65536), 422, "looks binary"),
    ("image.txt", malformed.png_header, 415, "PNG image"),
    ("program.md", malformed.elf_header, 415, "ELF executable"),
    ("page.html", malformed.gzipped_text, 415, "gzip archive"),
    ("latin.txt", malformed.invalid_utf8, 422, "not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("name", "build", "status", "reason"), UPLOADS, ids=[case[0] for case in UPLOADS]
)
def test_malformed_uploads_get_a_reason_and_store_nothing(
    client: TestClient,
    name: str,
    build,
    status: int,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    started = time.perf_counter()
    r = client.post("/documents", files=[("files", (name, io.BytesIO(build())))])
    assert time.perf_counter() - started < 20
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"] and name in r.json()["detail"]
    _assert_nothing_stored(client)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/etc/cron.d/evil.txt", "evil.txt"),
        ("..\\..\\Windows\\win.ini.txt", "win.ini.txt"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        ("..", "upload"),
        ("x" * 1000 + ".txt", "x" * 251 + ".txt"),
    ],
)
def test_file_names_are_stored_as_safe_base_names(
    client: TestClient, sent: str, stored: str
) -> None:
    text = b"A small note about safe names."
    r = client.post("/documents", files=[("files", (sent, io.BytesIO(text), "text/plain"))])
    assert r.status_code == 201, r.text
    doc = r.json()["documents"][0]
    assert doc["source"] == stored and doc["metadata"]["filename"] == stored


def test_control_characters_in_raw_file_names_are_dropped(client: TestClient) -> None:
    # httpx percent-encodes odd names, so the multipart body is written by hand
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="files"; filename="../bad\x00name\x1b.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"A small note about control characters.\r\n"
        b"--b0undary--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    r = client.post("/documents", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["documents"][0]["source"] == "badname.txt"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/ask", {"question": "q?"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q?"}]}),
        ("/api/chat", {"messages": [{"role": "user", "content": "q?"}], "stream": False}),
    ],
)
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client: TestClient, path: str, extra: dict, number: str) -> None:  # type: ignore[type-arg]
    body = json.dumps(extra)[:-1] + f', "prune_threshold": {number}}}'
    r = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "prune_threshold: Input should be a finite number" in r.json()["detail"]


@pytest.mark.parametrize(
    "knob",
    [
        {"top_k": 10**30},
        {"top_k": -1},
        {"candidates": 10**9},
        {"candidates": 0},
        {"max_context_tokens": 10**12},
        {"top_k": 1.5},
        {"top_k": "many"},
    ],
)
def test_out_of_range_knobs_are_422(client: TestClient, knob: dict) -> None:  # type: ignore[type-arg]
    r = client.post("/ask", json={"question": "q?", **knob})
    assert r.status_code == 422, r.text
    assert next(iter(knob)) in r.json()["detail"]
