"""Hostile and careless use, connection and load side: waiting uploads and questions hold no
worker thread, admission limits answer 503, slow and departing clients are cut off quietly.
The same attacks at full size: ``python -m bench.abuse``."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving import uvicorn_options
from index import Embedder
from tests.app.hostile import (
    COLLECTION,
    DOC,
    Keys,
    key_via_http,
    keyed_fixture,  # noqa: F401  (the `keyed` fixture)
    raw_request,
)
from tests.app.live_server import live_server
from tests.app.tenants import _bearer, _settings

# ---- 3. no thread-pool exhaustion ------------------------------------------------------------


def test_waiting_uploads_hold_no_threads(tmp_path: Path, embedder: Embedder) -> None:
    """50 uploads wait behind a job that cannot finish; /healthz and the document list stay
    fast (each waiting upload used to hold one of the pool's 40 threads)."""
    app = create_app(_settings(tmp_path, upload_wait_s=60), embedder)
    with live_server(app) as url:
        write = _bearer(key_via_http(url, "write"))
        release = threading.Event()
        jobs = app.state.services.jobs
        real_run = jobs._run

        def blocked(job_id: str, attempts: int) -> None:
            release.wait(60)
            real_run(job_id, attempts)

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
        write = key_via_http(url, "write")
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
                head = raw_request(
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
        jobs._run = lambda job_id, attempts: (release.wait(30), real_run(job_id, attempts))
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
        read = _bearer(key_via_http(url, "read"))
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


def test_a_client_leaving_mid_upload_logs_no_error(
    tmp_path: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(tmp_path), embedder)
    with live_server(app) as url:
        write = key_via_http(url, "write")
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
        write = key_via_http(url, "write")
        started = time.perf_counter()
        head = raw_request(
            url,
            f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title": ',
        )
        assert head.startswith(b"HTTP/1.1 408"), head[:200]
        assert b"body_timeout_s" in head
        assert time.perf_counter() - started < 4.0


def test_a_body_trickled_byte_by_byte_gets_408(tmp_path: Path, embedder: Embedder) -> None:
    """Each byte comes well within body_timeout_s, but the average rate is far below
    min_body_kbps: cut once body_timeout_s has passed."""
    settings = _settings(tmp_path, body_timeout_s=1.0, min_body_kbps=1.0)
    app = create_app(settings, embedder)
    with live_server(app, **uvicorn_options(settings)) as url:
        write = key_via_http(url, "write")
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
