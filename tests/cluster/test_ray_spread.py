"""Collections spread over a local Ray cluster (``sieve serve --ray --collection-replicas 2
--collections-per-replica 1``): each collection answered by the replica that holds it open,
the HTTP replica holding none, uploads (jobs), asks whole and streamed, the graph routes,
deletes and refusals through it. Four logical CPUs on this machine's cores; real models,
SQLite and FAISS.

Needs the ``ray`` extra (skipped without it unless ``SIEVE_REQUIRE_RAY=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.cluster.test_ray import _free_port, pytestmark  # noqa: F401  (skip unless Ray)

DEFAULT_DOC = {"title": "Skerrow light", "text": "Annis Holloway kept the Skerrow lighthouse."}
ALPHA_DOC = {"title": "Tollmere bridge", "text": "The Tollmere bridge has nine stone arches."}


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    from ray import serve

    from app.cluster import start_ray
    from app.cluster.serve import RayServeOptions, build_application

    ray = start_ray(None, num_cpus=4)  # logical: the replicas fit, on two real cores
    data = tmp_path_factory.mktemp("spread") / "data"
    settings = Settings(precision="fp32", data_dir=data, rate_limit_per_s=0, _env_file=None)  # type: ignore[call-arg]
    options = RayServeOptions(replicas=1, collection_replicas=2, collections_per_replica=1)
    metrics = str(tmp_path_factory.mktemp("metrics"))
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_application(settings, options, gpus=0, metrics_dir=metrics), name="sieve")
    handle = serve.get_deployment_handle("SieveCollections", app_name="sieve")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        yield client, handle
    serve.shutdown()
    ray.shutdown()


def _answer(client: httpx.Client, question: str, collection: str) -> tuple[str, list[str]]:
    r = client.post("/ask", json={"question": question, "collection": collection})
    assert r.status_code == 200, r.text
    return r.json()["answer"], [c["title"] for c in r.json()["citations"]]


def test_each_collection_lives_on_its_own_replica(spread: tuple[httpx.Client, Any]) -> None:
    client, handle = spread
    assert client.post("/admin/collections", json={"name": "alpha"}).status_code == 201
    assert client.post("/documents", json=DEFAULT_DOC).status_code == 201  # an upload job
    assert client.post("/documents?collection=alpha", json=ALPHA_DOC).status_code == 201

    answer, cited = _answer(client, "Who kept the lighthouse?", "default")
    assert "Annis Holloway" in answer and cited == ["Skerrow light"]
    answer, cited = _answer(client, "How many arches does the bridge have?", "alpha")
    assert "nine stone arches" in answer and cited == ["Tollmere bridge"]
    answer, cited = _answer(client, "Who kept the lighthouse?", "alpha")
    assert "Holloway" not in answer and "Skerrow light" not in cited  # isolation holds

    # one open collection per replica: the two live on different replicas
    for name in ("default", "alpha"):
        opened = handle.options(multiplexed_model_id=name).opened.remote().result()
        assert opened == [name]
    assert client.get("/healthz").json()["graph"]["nodes"] == 0  # the HTTP replica holds none

    # a third collection: a replica closes its least recently used one to open it, and a
    # collection closed that way opens again where it is next asked, with all its documents
    assert client.post("/admin/collections", json={"name": "beta"}).status_code == 201
    beta = {"title": "Brackwater mill", "text": "A flood destroyed the Brackwater mill wheel."}
    assert client.post("/documents?collection=beta", json=beta).status_code == 201
    for name, question, title in [
        ("beta", "What destroyed the mill wheel?", "Brackwater mill"),
        ("default", "Who kept the lighthouse?", "Skerrow light"),
        ("alpha", "How many arches does the bridge have?", "Tollmere bridge"),
    ]:
        assert _answer(client, question, name)[1] == [title]
        opened = handle.options(multiplexed_model_id=name).opened.remote().result()
        assert opened == [name]  # never more than one open per replica


def test_streams_deletes_and_refusals_go_through(spread: tuple[httpx.Client, Any]) -> None:
    client, _ = spread
    body = {"question": "How many arches?", "collection": "alpha", "stream": True}
    r = client.post("/ask", json=body)
    events = [line.removeprefix("event: ") for line in r.text.splitlines() if line[:6] == "event:"]
    assert r.status_code == 200 and events[0] == "retrieval" and events[-1] == "done"
    # the graph routes ask the collection's replica too (the HTTP replica opens nothing)
    found = client.get("/graph/entities", params={"collection": "alpha", "q": "tollmere"})
    assert found.status_code == 200 and found.json()["total"] >= 1, found.text
    key = found.json()["entities"][0]["key"]
    around = client.get("/graph/neighbourhood", params={"collection": "alpha", "entity": key})
    assert around.status_code == 200, around.text
    missing = client.get("/graph/neighbourhood", params={"collection": "alpha", "entity": "zz"})
    assert missing.status_code == 404
    assert client.get("/healthz").json()["graph"]["nodes"] == 0
    assert client.post("/ask", json={"question": "x", "collection": "nope"}).status_code == 404
    assert client.post("/ask", json={"question": " ", "collection": "alpha"}).status_code == 422
    [doc] = client.get("/documents?collection=alpha").json()["documents"]
    assert client.delete(f"/documents/{doc['id']}").status_code == 204
    assert client.get("/documents?collection=alpha").json()["total"] == 0
    assert _answer(client, "How many arches does the bridge have?", "alpha")[1] == []
