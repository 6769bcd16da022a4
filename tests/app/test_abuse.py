"""Hostile and careless use against a server with auth on: every attack of issue 13 as a
regression test. The caller's rights are checked before a byte of an upload is parsed; work per
document and per request is capped while it is done; waiting uploads and questions never hold
the worker pool, so /healthz and the document list stay fast; bad input is a 4xx, never a 500.

Small inputs made here; the same attacks at full size are replayed by ``python -m bench.abuse``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving import uvicorn_options
from index import Embedder
from tests.app import malformed
from tests.app.live_server import live_server
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


def _no_parsing(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_: object) -> None:
        raise AssertionError("the upload was parsed before the caller was authorised")

    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.uploads, "check", refuse)
    monkeypatch.setattr(services.uploads, "decode_json", refuse)


def _nothing_stored(client: TestClient) -> None:
    listing = client.get(f"/documents?collection={COLLECTION}", headers=ADMIN_H).json()
    assert listing["total"] == 0, listing


# ---- 1. authorise before parsing ------------------------------------------------------------


def test_read_key_uploads_are_refused_before_parsing(
    keyed: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = keyed
    _no_parsing(client, monkeypatch)
    bomb = "- item\n" * 200_000
    started = time.perf_counter()
    r1 = client.post(
        "/documents", json={"title": "t", "text": bomb, "format": "md"}, headers=keys.read
    )
    r2 = client.post("/documents", files={"files": ("b.md", bomb.encode())}, headers=keys.read)
    r3 = client.post(
        "/documents",
        files={"files": ("b.pdf", malformed.shared_stream_pdf(40, 2000))},
        headers=keys.read,
    )
    assert [r.status_code for r in (r1, r2, r3)] == [403, 403, 403]
    assert "read key" in r1.json()["detail"]
    assert time.perf_counter() - started < 3.0
    _nothing_stored(client)


def test_a_collection_outside_the_keys_scope_is_refused_before_parsing(
    keyed: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = keyed
    _collection(client, "private")
    _no_parsing(client, monkeypatch)
    r = client.post("/documents?collection=private", json=DOC, headers=keys.write)
    assert r.status_code == 403
    # named in the multipart form: the form is read (spooled), no file is parsed
    r = client.post(
        "/documents",
        files={"files": ("a.md", b"# A\n\ntext")},
        data={"collection": "private"},
        headers=keys.write,
    )
    assert r.status_code == 403


def test_a_read_key_gets_403_before_sending_its_body(tmp_path: Path, embedder: Embedder) -> None:
    """The answer comes while the client still holds 40 MB it never sent: nothing is read."""
    app = create_app(_settings(tmp_path), embedder)
    with live_server(app) as url, TestClient(app) as admin:
        read = _key_via_http(url, "read")
        del admin
        for content_type in ("application/json", "multipart/form-data; boundary=x"):
            started = time.perf_counter()
            head = _raw_request(
                url,
                f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {read}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: 40000000\r\n\r\n",
            )
            assert head.startswith(b"HTTP/1.1 403"), head[:200]
            assert time.perf_counter() - started < 1.0


def test_no_key_or_a_wrong_key_gets_401_before_the_body_is_read(
    tmp_path: Path, embedder: Embedder
) -> None:
    """FastAPI parses a JSON body before route dependencies run: the key is checked first."""
    app = create_app(_settings(tmp_path), embedder)
    with live_server(app) as url:
        for path in ("/ask", "/v1/chat/completions", "/documents/delete", "/api/chat"):
            for auth in ("", "Authorization: Bearer sieve_nope_nope\r\n"):
                started = time.perf_counter()
                head = _raw_request(
                    url,
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
                    "Content-Type: application/json\r\nContent-Length: 1900000\r\n\r\n",
                )
                assert head.startswith(b"HTTP/1.1 401"), (path, head[:200])
                assert b"www-authenticate" in head.lower()
                assert time.perf_counter() - started < 1.0


def test_form_fields_sent_as_files_and_media_type_case(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    r = client.post(
        "/documents",
        files=[("files", ("a.md", b"# A\n\nSome text here.")), ("external_id", ("x.txt", b"id"))],
        headers=keys.write,
    )
    assert r.status_code == 400 and "text fields" in r.json()["detail"], r.text
    r = client.post(
        "/documents",
        content=json.dumps(DOC),
        headers={**keys.write, "content-type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


def _key_via_http(url: str, role: str) -> str:
    with httpx.Client(base_url=url, headers=ADMIN_H, timeout=30) as http:
        r = http.post("/admin/collections", json={"name": COLLECTION})
        assert r.status_code in (201, 409), r.text
        r = http.post("/admin/keys", json={"collections": [COLLECTION], "role": role})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])


def _raw_request(url: str, head: str, timeout: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        return sock.recv(65536)


# ---- 2. extraction caps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "setting"),
    [
        ("long.txt", b"word " * 5000, "SIEVE_MAX_DOCUMENT_CHARS"),
        ("lines.md", b"- x\n" * 1000, "SIEVE_MAX_DOCUMENT_PARAGRAPHS"),
        ("many.pdf", malformed.pdf(pages=6), "SIEVE_MAX_DOCUMENT_PAGES"),
        ("tiny.docx", malformed.docx_many_paragraphs(2000), "SIEVE_MAX_DOCUMENT_PARAGRAPHS"),
        ("chunks.md", b"# Part\n\nOne line.\n\n" * 40, "SIEVE_MAX_DOCUMENT_CHUNKS"),
    ],
)
def test_extracted_work_is_capped_with_the_limit_named(
    keyed: tuple[TestClient, Keys], name: str, data: bytes, setting: str
) -> None:
    client, keys = keyed
    r = client.post("/documents", files={"files": (name, data)}, headers=keys.write)
    assert r.status_code == 413, r.text
    assert setting in r.json()["detail"]
    _nothing_stored(client)


def test_the_chunks_of_one_upload_are_capped(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    text = b"# Part\n\nOne line.\n\n" * 12  # 12 chunks: under the 30 of one document
    files = [("files", (f"part{i}.md", text + b"%d" % i)) for i in range(4)]  # 48 > 40
    r = client.post("/documents", files=files, headers=keys.write)
    assert r.status_code == 413 and "SIEVE_MAX_JOB_CHUNKS" in r.json()["detail"], r.text
    _nothing_stored(client)


def test_a_pdf_that_expands_is_stopped_in_bounded_time(keyed: tuple[TestClient, Keys]) -> None:
    """Pages sharing one compressed stream of 100,000 lines (~10 s of pypdf per page): the child
    parser is killed at its deadline (3 s here)."""
    client, keys = keyed
    bomb = malformed.shared_stream_pdf(5, 100_000)
    assert len(bomb) < 30_000
    started = time.perf_counter()
    r = client.post("/documents", files={"files": ("bomb.pdf", bomb)}, headers=keys.write)
    assert r.status_code == 413, r.text
    assert "SIEVE_PARSE_TIMEOUT_S" in r.json()["detail"]
    assert time.perf_counter() - started < 10.0
    _nothing_stored(client)


# ---- 3. no thread-pool exhaustion ------------------------------------------------------------


def test_waiting_uploads_hold_no_threads(tmp_path: Path, embedder: Embedder) -> None:
    """50 uploads wait behind a job that cannot finish; /healthz and the document list stay
    fast (each waiting upload used to hold one of the pool's 40 threads)."""
    app = create_app(_settings(tmp_path, upload_wait_s=60), embedder)
    with live_server(app) as url:
        write = _bearer(_key_via_http(url, "write"))
        release = threading.Event()
        jobs = app.state.services.jobs
        real_run = jobs._run

        def blocked(job_id: str) -> None:
            release.wait(60)
            real_run(job_id)

        jobs._run = blocked
        try:
            worst, listed = asyncio.run(_probe_while_uploading(url, write, 50))
        finally:
            release.set()
        assert listed == 200
        assert worst < 0.2, f"/healthz took {worst * 1000:.0f} ms while uploads waited"


async def _probe_while_uploading(url: str, write: dict[str, str], count: int) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(base_url=url, timeout=90, limits=limits) as http:
        uploads = [
            asyncio.create_task(
                http.post(
                    "/documents",
                    json={"title": f"Doc {i}", "text": f"Document number {i} is short."},
                    headers=write,
                )
            )
            for i in range(count)
        ]
        await asyncio.sleep(1.0)  # all of them sent and waiting
        worst = 0.0
        for _ in range(10):
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            worst = max(worst, time.perf_counter() - started)
        listed = (await http.get(f"/documents?collection={COLLECTION}", headers=write)).status_code
        for task in uploads:
            task.cancel()
        await asyncio.gather(*uploads, return_exceptions=True)
        return worst, listed


def test_uploads_past_max_pending_get_503_before_their_body_is_read(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Each upload being read or checked holds its body in memory: their number is bounded."""
    app = create_app(_settings(tmp_path, max_pending_uploads=1), embedder)
    with live_server(app) as url:
        write = _key_via_http(url, "write")
        release = threading.Event()
        uploads = app.state.services.uploads
        real_check = uploads.check

        async def slow(files: Any) -> Any:
            await asyncio.to_thread(release.wait, 30)
            return await real_check(files)

        uploads.check = slow
        statuses: list[int] = []
        with httpx.Client(base_url=url, timeout=60) as http:
            first = threading.Thread(
                target=lambda: statuses.append(
                    http.post("/documents", json=DOC, headers=_bearer(write)).status_code
                )
            )
            first.start()
            try:
                time.sleep(0.5)
                head = _raw_request(
                    url,
                    f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n",
                )
                assert head.startswith(b"HTTP/1.1 503"), head[:200]
                assert b"retry-after" in head.lower()
            finally:
                release.set()
                first.join(30)
        assert statuses == [201]  # the one that held the place went through


def test_an_upload_that_waits_too_long_answers_202_with_its_job(
    tmp_path: Path, embedder: Embedder
) -> None:
    with TestClient(create_app(_settings(tmp_path, upload_wait_s=0.5), embedder)) as client:
        keys = Keys(client)
        jobs = client.app.state.services.jobs  # type: ignore[attr-defined]
        release = threading.Event()
        real_run = jobs._run
        jobs._run = lambda job_id: (release.wait(30), real_run(job_id))
        r = client.post("/documents", json=DOC, headers=keys.write)
        release.set()
        assert r.status_code == 202, r.text
        assert r.headers["Location"] == f"/jobs/{r.json()['id']}"


def test_asks_are_bounded_by_settings(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    for extra, name in (({"candidates": 1000}, "candidates"), ({"top_k": 100}, "top_k")):
        r = client.post("/ask", json={"question": "x", **extra}, headers=keys.read)
        assert r.status_code == 422 and name in r.json()["detail"], r.text
        assert f"SIEVE_MAX_{name.upper()}" in r.json()["detail"]


def test_questions_run_on_their_own_threads(tmp_path: Path, embedder: Embedder) -> None:
    """Slow questions fill the ask threads and the admission queue (503 past it); the worker
    pool stays free for the light routes."""
    settings = _settings(tmp_path, ask_threads=2, max_pending_asks=6)
    app = create_app(settings, embedder)
    with live_server(app) as url:
        read = _bearer(_key_via_http(url, "read"))
        pipeline = app.state.services.pipeline
        release = threading.Event()
        real = pipeline._retrieve_and_prune

        def slow(*args: Any) -> Any:
            release.wait(30)
            return real(*args)

        pipeline._retrieve_and_prune = slow
        try:
            statuses, worst = asyncio.run(_asks_while_probing(url, read, 10))
        finally:
            release.set()
        assert statuses.count(503) == 4 and 500 not in statuses, statuses
        assert worst < 0.2


async def _asks_while_probing(
    url: str, read: dict[str, str], count: int
) -> tuple[list[int], float]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        asks = [
            asyncio.create_task(http.post("/ask", json={"question": "kettle?"}, headers=read))
            for _ in range(count)
        ]
        await asyncio.sleep(1.0)
        worst = 0.0
        for _ in range(5):
            started = time.perf_counter()
            r = await http.get(f"/documents?collection={COLLECTION}", headers=read)
            assert r.status_code == 200
            worst = max(worst, time.perf_counter() - started)
        done = [t for t in asks if t.done()]
        statuses = [t.result().status_code for t in done]
        for task in asks:
            task.cancel()
        await asyncio.gather(*asks, return_exceptions=True)
        return statuses, worst


# ---- 4./5. linear work, bounded responses ------------------------------------------------------


def test_document_detail_pages_its_chunks(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    text = " ".join(f"Sentence number {i} says little." for i in range(400))
    r = client.post("/documents", json={"title": "Long", "text": text}, headers=keys.write)
    assert r.status_code == 201, r.text
    doc = r.json()["documents"][0]
    assert doc["chunk_count"] > 3
    page = client.get(f"/documents/{doc['id']}?chunk_limit=2&chunk_offset=1", headers=keys.read)
    body = page.json()
    assert [c["ordinal"] for c in body["chunks"]] == [1, 2] and body["chunk_offset"] == 1
    bare = client.get(f"/documents/{doc['id']}?text=false&chunk_limit=0", headers=keys.read)
    assert bare.json()["text"] == "" and bare.json()["chunks"] == []
    assert (
        client.get(f"/documents/{doc['id']}?chunk_limit=5000", headers=keys.read).status_code == 422
    )


# ---- 7. no 5xx on bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/chat", "/api/generate", "/api/show", "/ask", "/v1/chat/completions", "/documents"],
)
def test_deeply_nested_json_is_a_4xx(keyed: tuple[TestClient, Keys], path: str) -> None:
    client, keys = keyed
    headers = keys.write if path == "/documents" else keys.read
    body = "[" * 100_000 + "]" * 100_000
    r = client.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert "nested too deeply" in r.text or r.status_code in (400, 422)


def test_a_client_leaving_mid_upload_logs_no_error(
    tmp_path: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(tmp_path), embedder)
    with live_server(app) as url:
        write = _key_via_http(url, "write")
        caplog.clear()
        with caplog.at_level(logging.INFO):
            body = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n'
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(
                    f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write}\r\n"
                    "Content-Type: multipart/form-data; boundary=x\r\n"
                    "Content-Length: 100000\r\n\r\n".encode()
                    + body
                    + b"half of the file"
                )
                time.sleep(0.3)
            time.sleep(0.5)
            assert httpx.get(f"{url}/healthz").status_code == 200
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]


# ---- 6. slow clients -----------------------------------------------------------------------------


def test_slow_clients_are_cut_off(tmp_path: Path, embedder: Embedder) -> None:
    settings = _settings(tmp_path, header_timeout_s=1.0, body_timeout_s=1.0)
    app = create_app(settings, embedder)
    with live_server(app, **uvicorn_options(settings)) as url:
        host, port = url.removeprefix("http://").split(":")
        slow_headers = [socket.create_connection((host, int(port)), timeout=5) for _ in range(5)]
        slow_body = socket.create_connection((host, int(port)), timeout=5)
        started = time.perf_counter()
        for sock in slow_headers:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        slow_body.sendall(
            b"POST /ask HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200  # others are served
        for sock in slow_headers:
            assert sock.recv(1024) == b""  # closed by the server
        assert time.perf_counter() - started < 4.0
        # a body that stops coming: 401 here (auth is checked first), or 408 on a public route
        assert slow_body.recv(1024).split(b"\r\n")[0] in (
            b"HTTP/1.1 401 Unauthorized",
            b"HTTP/1.1 408 Request Timeout",
        )
        for sock in [*slow_headers, slow_body]:
            sock.close()


def test_a_trickled_body_gets_408(tmp_path: Path, embedder: Embedder) -> None:
    settings = _settings(tmp_path, body_timeout_s=1.0)
    app = create_app(settings, embedder)
    with live_server(app, **uvicorn_options(settings)) as url:
        write = _key_via_http(url, "write")
        started = time.perf_counter()
        head = _raw_request(
            url,
            f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title": ',
        )
        assert head.startswith(b"HTTP/1.1 408"), head[:200]
        assert b"body_timeout_s" in head
        assert time.perf_counter() - started < 4.0


# ---- 8./10. control characters, private files --------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {**DOC, "title": "Kettle\x1b]0;pwned\x07"},
        {**DOC, "title": "Kettle \u202egnp.exe"},
        {**DOC, "metadata": {"author": "a\x1b[2J"}},
        {**DOC, "metadata": {"\x00": "x"}},
        {**DOC, "external_id": "id\r\n"},
        {**DOC, "metadata": {"k": "\udc00"}},  # a lone surrogate: unencodable in any response
        {**DOC, "metadata": {"\ud800": "v"}},
    ],
)
def test_control_characters_in_labels_are_refused(
    keyed: tuple[TestClient, Keys], doc: dict[str, Any]
) -> None:
    client, keys = keyed
    body = json.dumps(doc)  # ASCII with \u escapes: a lone surrogate travels as the attack does
    r = client.post(
        "/documents", content=body, headers={**keys.write, "content-type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    assert "control" in r.json()["detail"] or "surrogate" in r.json()["detail"]
    assert client.get(f"/documents?collection={COLLECTION}", headers=keys.read).status_code == 200


def test_titles_read_from_files_lose_their_control_characters(
    keyed: tuple[TestClient, Keys],
) -> None:
    client, keys = keyed
    data = b"Kettle\x1b[2J \xe2\x80\xae manual\n\nThe kettle boils water quickly."
    r = client.post("/documents", files={"files": ("k.txt", data)}, headers=keys.write)
    assert r.status_code == 201, r.text
    title = r.json()["documents"][0]["title"]
    assert "\x1b" not in title and "\u202e" not in title


def test_the_data_dir_files_are_private(keyed: tuple[TestClient, Keys], tmp_path: Path) -> None:
    client, keys = keyed
    assert client.post("/documents", json=DOC, headers=keys.write).status_code == 201
    client.app.state.services.library.save_index()  # type: ignore[attr-defined]
    data = tmp_path / "data"
    checked = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in checked} >= {"sieve.db", "sieve.db-wal", "faiss.index"}
    loose = {
        p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in checked if p.stat().st_mode & 0o077
    }
    assert not loose


def test_json_upload_of_nested_metadata_is_refused(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    r = client.post(
        "/documents",
        content=json.dumps({**DOC, "metadata": {"a": {"b": "c"}}}),
        headers={**keys.write, "content-type": "application/json"},
    )
    assert r.status_code == 400


# ---- 4. the splitter and chunker are linear on pathological input ------------------------------


def _nested_list(n: int) -> str:
    return "".join("  " * (i % 60) + "- x\n" for i in range(n))


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "a\n" * n,
        _nested_list,
        lambda n: "A. " * n,
        lambda n: "word " * n,
        lambda n: "|" * n,
        lambda n: "# h\n\nx\n\n" * (n // 4),
    ],
    ids=["short-lines", "nested-list", "initials", "one-line", "pipes", "sections"],
)
def test_splitting_and_chunking_grow_linearly(make: Any) -> None:
    """4x the input costs about 4x the time (min of 3 runs; quadratic would be 16x), and every
    sentence stays bounded."""
    from app.parsing import MAX_SENTENCE_CHARS, chunk_document, parse_text

    def cost(n: int) -> float:
        doc = parse_text("t", make(n), "md")
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            chunks = chunk_document(doc, 150, 200)
            best = min(best, time.perf_counter() - started)
        assert all(s.end - s.start <= MAX_SENTENCE_CHARS for c in chunks for s in c.sentences)
        return best

    small, big = cost(10_000), cost(40_000)
    assert big < 8 * small + 0.05, f"{small:.3f} s -> {big:.3f} s for 4x the input"


def test_a_body_trickled_byte_by_byte_gets_408(tmp_path: Path, embedder: Embedder) -> None:
    """Each byte comes well within body_timeout_s, but the average rate is far below
    min_body_kbps: cut once body_timeout_s has passed."""
    settings = _settings(tmp_path, body_timeout_s=1.0, min_body_kbps=1.0)
    app = create_app(settings, embedder)
    with live_server(app, **uvicorn_options(settings)) as url:
        write = _key_via_http(url, "write")
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode()
            )
            started = time.perf_counter()
            sock.settimeout(0.2)
            reply = b""
            while not reply and time.perf_counter() - started < 8:
                sock.sendall(b" ")
                try:
                    reply = sock.recv(4096)
                except TimeoutError:
                    continue
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"min_body_kbps" in reply
        assert time.perf_counter() - started < 4.0
