"""GPU placement on a local cluster that declares one logical GPU (``ray.init(num_gpus=1)``).

Ray schedules by declared resources, so this checks what the GPU code paths ask for: the pruner
and embedder deployments take half the GPU each (both must be placed, or ``serve.run`` never
returns), and ``sieve ingest --ray``'s embedding actor takes it whole. This machine's torch has
no CUDA, so the models themselves still run on the CPU here: CUDA kernels, memory and speed on
a real GPU are not checked by this test.

Needs the ``ray`` extra (skipped without it unless ``SIEVE_REQUIRE_RAY=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.test_ray import (  # noqa: F401  (pytestmark: skip unless Ray)
    QUESTIONS,
    _folder,
    _free_port,
    _settings,
    pytestmark,
)


@pytest.fixture(scope="module")
def one_gpu() -> Iterator[Any]:
    from app.cluster import start_ray

    ray = start_ray(None, num_cpus=4, num_gpus=1)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def test_ingest_embeds_on_the_gpu_actor(one_gpu: Any, tmp_path: Path) -> None:
    from app.cluster.ingest import RayIngestOptions, ingest_with_ray

    assert one_gpu.cluster_resources().get("GPU") == 1
    files = sorted(_folder(tmp_path).iterdir())
    tally = ingest_with_ray(files, _settings(tmp_path / "data"), "default", RayIngestOptions())
    assert tally.added == 4 and len(tally.failures) == 1  # the broken PDF, as without a GPU


def test_the_model_deployments_share_one_gpu(one_gpu: Any, tmp_path: Path) -> None:
    from ray import serve

    from app.cluster.serve import RayServeOptions, build_application

    gpus = int(one_gpu.cluster_resources()["GPU"])
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = build_application(
        _settings(tmp_path / "data", rate_limit_per_s=0),
        RayServeOptions(replicas=1),
        gpus,
        metrics_dir=str(tmp_path / "metrics"),
    )
    serve.run(app, name="sieve")  # returns once every deployment is placed and healthy
    try:
        assert one_gpu.available_resources().get("GPU", 0.0) == 0.0  # half each, both placed
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            doc = {"title": "Skerrow light", "text": "Annis Holloway lit the Skerrow lighthouse."}
            assert client.post("/documents", json=doc).status_code == 201
            r = client.post("/ask", json={"question": QUESTIONS[0]})
            assert r.status_code == 200 and "Annis Holloway" in r.json()["answer"], r.text
    finally:
        serve.delete("sieve")
