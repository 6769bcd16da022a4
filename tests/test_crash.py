"""SIGKILL during ingestion loses nothing acknowledged and leaves nothing half-stored (a short
run of bench/crash.py: two kills, then a restart that must reconcile SQLite, FAISS, BM25 and
the graph)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash import run


@pytest.mark.slow
def test_kill_during_ingest_then_restart(tmp_path: Path) -> None:
    result = run(rounds=2, seed=3, data_dir=tmp_path / "data")
    assert result["problems"] == []
    assert result["acknowledged"] > 0 and result["documents"] >= result["acknowledged"]
    found, sampled = map(int, str(result["search_found"]).split("/"))
    assert found == sampled
