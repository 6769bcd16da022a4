"""`sieve doctor`: every check on a fresh data dir, an unreachable LLM server, the FAISS file
header, sieve.db's size with its WAL, the llama.cpp check before llama-cpp-python is installed."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import common, doctor, main
from app.settings import Settings
from index import Embedder, VectorIndex


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    monkeypatch.setattr(common, "load_embedder", lambda *args: embedder)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_json_on_a_fresh_data_dir(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--json"], settings) == 0
    report = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and list(checks) == [name for name, _ in doctor.CHECKS]
    assert all(c["status"] in ("ok", "warn") for c in checks.values())
    assert "matches" in checks["minilm"]["detail"]
    assert "will be created" in checks["data dir"]["detail"]
    assert "no faiss.index yet" in checks["faiss"]["detail"]
    assert checks["llm"]["detail"].startswith("extractive")
    assert not settings.data_dir.exists()  # a doctor looks, it does not create


def test_doctor_fails_on_an_unreachable_openai_server(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    openai = settings.model_copy(update={"llm": "openai", "llm_base_url": url})
    assert main(["doctor"], openai) == 1
    lines = capsys.readouterr().out.splitlines()
    llm = next(line for line in lines if line.split()[1] == "llm")
    assert llm.startswith("FAIL") and f"{url}/models" in llm
    assert lines[-1].endswith("1 FAIL")


def test_doctor_reaches_an_openai_server(settings: Settings, stub_llm: object) -> None:
    """The stub serves chat completions only: reachable, /models answers 404 → a warning."""
    url = getattr(stub_llm, "base_url")  # noqa: B009  (the fixture's class is not exported)
    status, detail = doctor.check_llm(
        settings.model_copy(update={"llm": "openai", "llm_base_url": url})
    )
    assert status == "warn" and "404" in detail


def test_stored_index_kind_read_from_the_file_header(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).random((50, 8), dtype=np.float32)
    for kind in ("flat", "hnsw", "ivf"):
        index = VectorIndex(8, kind=kind, use_gpu=False)  # type: ignore[arg-type]
        index.add(np.arange(50), vectors)
        index.save(tmp_path / f"{kind}.index")
        assert doctor.stored_index_kind(tmp_path / f"{kind}.index") == (kind, 50)


def test_doctor_warns_when_the_stored_index_type_differs(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    VectorIndex(8, kind="flat", use_gpu=False).save(settings.index_path)
    status, detail = doctor.check_faiss(settings.model_copy(update={"index_kind": "hnsw"}))
    assert status == "warn" and "stored flat (0 vectors)" in detail and "rebuilt" in detail


def test_data_dir_counts_the_database_wal(settings: Settings) -> None:
    """Until a checkpoint the writes sit in sieve.db-wal: the size must include it."""
    settings.data_dir.mkdir(parents=True)
    conn = sqlite3.connect(settings.db_path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE t (b BLOB)")
        conn.executemany("INSERT INTO t VALUES (?)", [(bytes(4096),)] * 512)  # 2 MiB
        conn.commit()
        assert settings.db_path.stat().st_size <= 8192  # the rows are all in the -wal file
        _, detail = doctor.check_data_dir(settings)
    finally:
        conn.close()
    found = re.search(r"sieve\.db (\d+\.\d) MiB \(incl\. (\d+\.\d) MiB WAL\)", detail)
    assert found, detail
    assert float(found[1]) >= float(found[2]) >= 2.0


def test_database_size_adds_wal_and_shm(tmp_path: Path) -> None:
    db = tmp_path / "sieve.db"
    assert doctor._data_file_size(db) == "absent"
    db.write_bytes(bytes(4096))
    assert doctor._data_file_size(db) == "4.0 KiB"  # no WAL: as before
    (tmp_path / "sieve.db-wal").write_bytes(bytes(12_900_000))
    (tmp_path / "sieve.db-shm").write_bytes(bytes(32768))
    assert doctor._data_file_size(db) == "12.3 MiB (incl. 12.3 MiB WAL)"


def test_llamacpp_check_without_llama_cpp_installed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when not installed
    status, detail = doctor.check_llm(settings.model_copy(update={"llm": "llamacpp"}))
    assert status == "FAIL" and "llama-cpp-python" in detail


def test_gguf_file_checked_for_its_magic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = type(sys)("llama_cpp")
    fake.__version__ = "0.3.16"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    gguf = tmp_path / "model.gguf"
    monkeypatch.setattr(doctor, "gguf_path", lambda settings: gguf)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert doctor.check_llamacpp(settings)[0] == "FAIL"  # missing
    gguf.write_bytes(b"GGUF" + bytes(16))
    assert doctor.check_llamacpp(settings) == ("ok", f"llama_cpp 0.3.16; {gguf} (20 B)")
    gguf.write_bytes(b"nope")
    assert doctor.check_llamacpp(settings)[0] == "FAIL"
