"""bench/abuse.py without a server: its payloads open in the libraries Sieve parses them with,
and its bookkeeping (expectations, log scan, process tree, slow sockets) judges correctly."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import docx
from pypdf import PdfReader

from bench.abuse import QUICK, Result, Sizes, parse_args
from bench.abuse_payloads import docx_bomb, nested_md, pdf_bomb
from bench.abuse_server import log_window, process_tree, tree_rss_mb
from bench.abuse_sockets import Slow, trickle_all


def test_pdf_pages_share_one_compressed_stream() -> None:
    data = pdf_bomb(pages=40, text_kb=50)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 40
    refs = {page.get("/Contents").idnum for page in reader.pages}  # type: ignore[union-attr]
    assert len(refs) == 1
    text = reader.pages[39].extract_text()
    assert len(text) > 40_000 and set(text) <= {"a", "\n", " "}
    assert len(data) < 12_000  # 40 x 50 KB of text from a few KB


def test_default_pdf_and_docx_are_small_files() -> None:
    sizes = Sizes()
    assert 8_000 < len(pdf_bomb(sizes.pdf_pages, sizes.pdf_text_kb)) < 40_000
    assert len(docx_bomb(sizes.docx_paragraphs)) < 200_000


def test_docx_opens_in_python_docx() -> None:
    document = docx.Document(io.BytesIO(docx_bomb(2000)))
    assert len(document.paragraphs) == 2000
    assert document.paragraphs[-1].text == "a"


def test_nested_markdown_indents_cyclically() -> None:
    lines = nested_md(6, 3).decode().splitlines()
    assert lines == ["- x", "  - x", "    - x", "- x", "  - x", "    - x"]


def test_result_expectations() -> None:
    assert Result("r", "403", 0.2, "403", 1.0).problem() is None
    assert "expected 403 within 1.0 s" in str(Result("r", "403", 3.0, "403", 1.0).problem())
    assert "(5xx)" in str(Result("r", "500", 0.1, "any").problem())
    assert Result("r", "ReadTimeout", 9.0, "any").problem() is None
    assert Result("r", "ReadTimeout", 9.0, "4xx", 70.0).problem() is not None
    assert Result("r", "503", 0.1, "2xx", busy_ok=True).problem() is None
    assert Result("r", "503", 0.1, "2xx").server_error
    assert Result("r", "open", 45.0, "closed", 15.0).problem() is not None
    assert Result("r", "408", 31.0, "closed", 35.0).problem() is None


def test_log_window_counts_tracebacks_and_5xx_after_offset(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    line = "2026-01-01 00:00:00,000 INFO sieve.access [abc]: {} /documents {} 1.0 ms\n"
    log.write_text(line.format("POST", 500))
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write(line.format("POST", 201) + line.format("POST", 503) + line.format("GET", 502))
        f.write("Traceback (most recent call last):\n  ...\n")
    found = log_window(log, offset)
    assert found["tracebacks"] == 1
    assert found["status_5xx_lines"] == 1  # the 502; 503 is load shedding, the 500 is earlier
    assert log_window(log, 0)["status_5xx_lines"] == 2


def test_process_tree_includes_children() -> None:
    child = subprocess.Popen(["sleep", "10"])
    try:
        assert child.pid in process_tree(os.getpid())
        assert tree_rss_mb(os.getpid()) > 0
    finally:
        child.kill()
        child.wait()


def test_quick_sizes_and_overrides() -> None:
    args, sizes = parse_args(["--quick", "--ask-burst", "3", "--only", "3, 9"])
    assert sizes.ask_burst == 3 and sizes.md_lines == QUICK.md_lines
    assert args.only == {"3", "9"} and args.deadline_s == 180.0
    args, sizes = parse_args([])
    assert sizes == Sizes() and args.deadline_s == 300.0


def _serve_once(listener: socket.socket, answer: bytes) -> None:
    conn, _ = listener.accept()
    time.sleep(0.3)
    if answer:
        conn.sendall(answer)
    conn.close()


def test_slow_sockets_record_how_the_server_ended_them() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    slows = []
    for answer in (b"", b"HTTP/1.1 408 Request Timeout\r\n\r\n"):
        server = threading.Thread(target=_serve_once, args=(listener, answer), daemon=True)
        server.start()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        slows.append(Slow("s", sock, b"GET / HTTP/1.1\r\n", 5.0))
        server.join(5)
    listener.close()
    trickle_all(slows, cap_s=3.0, every_s=0.1)
    assert [s.outcome for s in slows] == ["closed", "408"]
    assert all(s.ended is not None and s.ended - s.started < 3.0 for s in slows)
