"""Hostile and careless use, upload and input side, against a server with auth on: the caller's
rights are checked before a byte of an upload is parsed; work per document is capped while it is
done; bad input is a 4xx, never a 500; labels cannot carry control characters. Connections and
load: test_abuse_load.py. The same attacks at full size: ``python -m bench.abuse``."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from index import Embedder
from tests.app import malformed
from tests.app.hostile import (
    COLLECTION,
    DOC,
    Keys,
    key_via_http,
    keyed_fixture,  # noqa: F401  (the `keyed` fixture)
    no_parsing,
    nothing_stored,
    raw_request,
)
from tests.app.live_server import live_server
from tests.app.tenants import _collection, _settings

# ---- 1. authorise before parsing ------------------------------------------------------------


def test_read_key_uploads_are_refused_before_parsing(
    keyed: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = keyed
    no_parsing(client, monkeypatch)
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
    nothing_stored(client)


def test_a_collection_outside_the_keys_scope_is_refused_before_parsing(
    keyed: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = keyed
    _collection(client, "private")
    no_parsing(client, monkeypatch)
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
        read = key_via_http(url, "read")
        del admin
        for content_type in ("application/json", "multipart/form-data; boundary=x"):
            started = time.perf_counter()
            head = raw_request(
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
                head = raw_request(
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
    nothing_stored(client)


def test_the_chunks_of_one_upload_are_capped(keyed: tuple[TestClient, Keys]) -> None:
    client, keys = keyed
    text = b"# Part\n\nOne line.\n\n" * 12  # 12 chunks: under the 30 of one document
    files = [("files", (f"part{i}.md", text + b"%d" % i)) for i in range(4)]  # 48 > 40
    r = client.post("/documents", files=files, headers=keys.write)
    assert r.status_code == 413 and "SIEVE_MAX_JOB_CHUNKS" in r.json()["detail"], r.text
    nothing_stored(client)


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
    nothing_stored(client)


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
    client.app.state.services.default_collection.save_index()  # type: ignore[attr-defined]
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
