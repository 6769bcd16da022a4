"""Shared fixtures: one real MiniLM embedder per test session, fresh data dirs per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from app.settings import Settings
from index import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(device="cpu").load()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(precision="fp32", data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(settings, embedder)) as c:
        yield c


from tests.app.stub_llm import stub_llm  # noqa: E402, F401  (session fixture: fake LLM server)
