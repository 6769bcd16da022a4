"""GET /metrics, the request id and the JSON logs, through TestClient over the real app."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from app.observability import JsonFormatter
from app.observability.collectors import GpuCollector
from app.observability.logs import RequestIdFilter
from app.observability.metrics import STAGES

TEXT = (
    "The Moon orbits the Earth once every 27.3 days. Its surface is covered with craters. "
    "Mars has two small moons called Phobos and Deimos. Jupiter is the largest planet."
)


def _scrape(client: TestClient) -> dict[str, Metric]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _value(families: dict[str, Metric], family: str, sample: str, **labels: str) -> float | None:
    """The value of the one sample named ``sample`` whose labels include ``labels``."""
    for s in families[family].samples:
        if s.name == sample and labels.items() <= s.labels.items():
            return s.value
    return None


def _upload(client: TestClient) -> str:
    r = client.post("/documents", json={"title": "Space", "text": TEXT})
    assert r.status_code == 201, r.text
    return str(r.json()["documents"][0]["id"])


def test_metrics_after_upload_and_ask(client: TestClient) -> None:
    doc_id = _upload(client)
    r = client.post("/ask", json={"question": "How long does the Moon take to orbit the Earth?"})
    assert r.status_code == 200, r.text
    assert client.get(f"/documents/{doc_id}").status_code == 200
    assert client.get("/documents/no-such-document").status_code == 404
    assert client.get("/no/such/path").status_code == 404

    m = _scrape(client)
    requests = "sieve_http_requests_total"
    assert _value(m, "sieve_http_requests", requests, route="/ask", status="200") == 1
    assert _value(m, "sieve_http_requests", requests, route="/documents", status="201") == 1
    template = "/documents/{document_id}"
    assert _value(m, "sieve_http_requests", requests, route=template, status="200") == 1
    assert _value(m, "sieve_http_requests", requests, route=template, status="404") == 1
    assert _value(m, "sieve_http_requests", requests, route="other", status="404") == 1
    routes = {s.labels["route"] for s in m["sieve_http_requests"].samples}
    assert not any(doc_id in r or "no-such" in r for r in routes)  # ids never become labels
    latency = "sieve_http_request_duration_seconds"
    assert _value(m, latency, latency + "_count", method="POST", route="/ask") == 1

    stages = "sieve_pipeline_stage_duration_seconds"
    for stage in ("prune", "total", "embed", "fuse"):
        assert _value(m, stages, stages + "_count", stage=stage) == 1, stage
    assert {s.labels["stage"] for s in m[stages].samples} <= STAGES | {"other"}
    before, after = (
        _value(m, f"sieve_pipeline_tokens_{k}_pruning", f"sieve_pipeline_tokens_{k}_pruning_total")
        for k in ("before", "after")
    )
    assert before and after and 0 < after <= before
    ratio = "sieve_pipeline_compression_ratio"
    assert _value(m, ratio, ratio + "_count") == 1
    cands = "sieve_pipeline_candidates"
    assert (_value(m, cands, cands + "_sum", retriever="vector") or 0) >= 1
    assert _value(m, cands, cands + "_count", retriever="lexical") == 1
    assert _value(m, "sieve_answers", "sieve_answers_total", llm="extractive", abstained="no") == 1

    assert _value(m, "sieve_documents", "sieve_documents") == 1
    assert (_value(m, "sieve_chunks", "sieve_chunks") or 0) >= 1
    assert _value(m, "sieve_ingest_uploads_in_flight", "sieve_ingest_uploads_in_flight") == 0
    assert _value(m, "sieve_build_info", "sieve_build_info", version="0.1.0") == 1


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("req-42.a_B", True), (None, False), ("bad id!", False), ("x" * 65, False)],
)
def test_request_id_echoed_when_sane(client: TestClient, sent: str | None, echoed: bool) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}
    got = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    if echoed:
        assert got == sent
    else:
        assert got != sent and re.fullmatch(r"[0-9a-f]{32}", got)


def test_json_log_lines_carry_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Also from a worker thread: GET /documents is a sync route, run in the threadpool."""
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    store = client.app.state.services.default_collection.store  # type: ignore[attr-defined]
    count = store.count_documents

    def logged_count(collection: str | None = None) -> int:
        logging.getLogger("tests.worker").info("counting documents")
        return int(count(collection))

    store.count_documents = logged_count
    try:
        assert client.get("/documents", headers={"X-Request-ID": "trace-7"}).status_code == 200
    finally:
        logging.getLogger().removeHandler(handler)
        store.count_documents = count
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    worker = [e for e in lines if e["logger"] == "tests.worker"]
    assert worker and worker[0]["request_id"] == "trace-7"
    (access,) = [e for e in lines if e["logger"] == "sieve.access"]
    assert access["request_id"] == "trace-7" and access["level"] == "INFO"
    assert access["method"] == "GET" and access["route"] == "/documents"
    assert access["status"] == 200 and access["duration_ms"] >= 0
    assert set(access) >= {"ts", "message", "path"}


def test_gpu_memory_per_device_only_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU in CI: fake torch.cuda's allocator statistics."""
    registry = CollectorRegistry()
    registry.register(GpuCollector())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "sieve_gpu" not in generate_latest(registry).decode()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda i: 100 * (i + 1))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda i: 1000 * (i + 1))
    m = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    allocated = "sieve_gpu_memory_allocated_bytes"
    assert _value(m, allocated, allocated, device="cuda:1") == 200
    reserved = "sieve_gpu_memory_reserved_bytes"
    assert _value(m, reserved, reserved, device="cuda:0") == 1000


def test_the_live_gauges_of_a_killed_process_leave_the_shared_sum(tmp_path: Path) -> None:
    """Several processes sharing their metrics (`sieve serve --ray`'s replicas): a replica that
    was killed without detaching stops counting in the live gauges (in-flight uploads)."""
    import os
    import subprocess
    import sys

    from app.observability.metrics import _forget_dead

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    for pid in (gone, str(os.getpid())):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{gone}.db").write_bytes(b"")  # what it counted stays counted
    _forget_dead(str(tmp_path))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f"counter_{gone}.db", f"gauge_livesum_{os.getpid()}.db"])
