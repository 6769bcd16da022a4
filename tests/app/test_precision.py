"""Precision per machine: what auto picks, what /healthz and `sieve doctor` show, and that the
embedder's lower precisions keep vectors unit-norm and close to fp32's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app import precision as prec
from app.cli import doctor
from app.precision import resolve_precision
from app.settings import Settings
from index import Embedder


def test_auto_picks_bf16_only_where_the_cpu_multiplies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(prec, "cpu_features", lambda: ["amx", "avx512_bf16", "avx512"])
    chosen = resolve_precision("auto", "auto")
    assert (chosen.device, chosen.precision) == ("cpu", "bf16") and "amx" in chosen.reason
    monkeypatch.setattr(prec, "cpu_features", lambda: ["avx512"])
    assert resolve_precision("auto", "cpu").precision == "fp32"
    assert resolve_precision("int8", "cpu").precision == "int8"  # named: taken as given
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("int8", "cuda")


def test_doctor_warns_about_emulated_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_features", lambda: [])
    status, detail = doctor.check_precision(Settings(precision="bf16", device="cpu"))
    assert status == "warn" and "emulated" in detail
    status, detail = doctor.check_precision(Settings(precision="fp32", device="cpu"))
    assert status == "ok" and detail.startswith("fp32 on cpu")


def test_healthz_shows_the_precision_and_batching_to_the_admin(client: TestClient) -> None:
    client.post("/ask", json={"question": "Anything here?"})
    models = client.get("/healthz").json()["models"]
    assert models["precision"] in ("fp32", "bf16") and models["reason"]
    assert models["embedder_precision"] == "fp32"  # the tests' shared embedder
    assert models["pruner_precision"] == models["precision"]
    assert set(models["pruner_batches"]) == {"calls", "requests", "largest", "cache_hits"}
    assert models["sentence_blend_threshold"] == 0.015  # the blend shipped with the checkpoint


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_embedder_precisions_stay_close_to_fp32(embedder: Embedder, precision: str) -> None:
    texts = ["The cat sat on the mat.", "Licences grant the right to copy.", "Who wrote Hamlet?"]
    low = Embedder(device="cpu", precision=precision).load()
    a, b = embedder.encode(texts), low.encode(texts)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    floor = 0.99 if precision == "bf16" else 0.9  # int8 dynamic quantisation moves vectors more
    assert (a * b).sum(axis=1).min() > floor
    with pytest.raises(ValueError, match="precision"):
        Embedder(precision="fp8")
