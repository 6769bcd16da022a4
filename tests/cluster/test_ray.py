"""Sieve on a local Ray cluster (two CPUs, started once for the module): ``sieve ingest --ray``
against the plain CLI, and ``sieve serve --ray`` (two HTTP replicas, a pruner and an embedder
deployment) over HTTP: upload then ask, auth and collection isolation across replicas, and a
pruner replica killed while questions are in flight.

Needs the ``ray`` extra; skipped without it, unless ``SIEVE_REQUIRE_RAY=1`` (CI), where a
missing extra fails the tests. Real models, SQLite and FAISS; the extractive answer backend.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main as cli_main
from app.settings import Settings
from index import DocumentStore, Embedder
from tests.app.tenants import A_DOC, ADMIN, ADMIN_H, B_DOC, A, B


def _have_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:  # missing, or installed but broken
        return False
    return True


HAVE_RAY = _have_ray()
REQUIRED = os.environ.get("SIEVE_REQUIRE_RAY") == "1"
pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(
        not HAVE_RAY and not REQUIRED,
        reason="ray not installed: pip install -e '.[ray]' (SIEVE_REQUIRE_RAY=1 makes this a "
        "failure)",
    ),
]

DOCS = {
    "lighthouse.md": "# Skerrow lighthouse\n\nThe Skerrow lighthouse was lit in 1811 by the "
    "keeper Annis Holloway. Its lamp burned whale oil until 1870.\n",
    "bridge.txt": "The Tollmere bridge has nine stone arches. It was finished in 1743 and "
    "carries the old post road over the river Wend.\n",
    "mill.html": "<html><head><title>Brackwater mill</title></head><body><p>The Brackwater "
    "mill ground oats for three villages. A flood destroyed its wheel in 1902.</p></body></html>",
    "orchard.md": "# Penhallow orchard\n\nPenhallow orchard grows forty kinds of cider apple. "
    "The oldest tree was planted in 1798 by Merryn Trask.\n",
    "broken.pdf": "not a pdf at all",
}
QUESTIONS = [
    "Who lit the Skerrow lighthouse?",
    "How many arches does the Tollmere bridge have?",
    "What destroyed the wheel of the Brackwater mill?",
]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    from app.cluster import start_ray

    ray = start_ray(None, num_cpus=2)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def _settings(data_dir: Path, **extra: Any) -> Settings:
    return Settings(precision="fp32", data_dir=data_dir, _env_file=None, **extra)  # type: ignore[call-arg]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


def _stored(data_dir: Path) -> set[tuple[str, str, int]]:
    store = DocumentStore(data_dir / "sieve.db")
    try:
        return {(d.title, d.content_hash, d.chunk_count) for d in store.list_documents()}
    finally:
        store.close()


def _answers(settings: Settings, embedder: Embedder) -> list[tuple[str, list[str]]]:
    import anyio

    from app.services import Services

    services = Services.build(settings, embedder)

    async def ask_all() -> list[tuple[str, list[str]]]:
        out = []
        for q in QUESTIONS:
            answer = await services.sieve.ask(q, services.sieve.options())
            out.append((answer.answer, [c.title for c in answer.citations]))
        await services.aclose()
        return out

    return anyio.run(ask_all)


def test_ingest_with_ray_matches_the_plain_cli_and_resumes(
    ray_cluster: Any, tmp_path: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cluster.ingest import RayIngestOptions, ingest_with_ray

    folder = _folder(tmp_path)
    plain, clustered = tmp_path / "plain", tmp_path / "ray"
    assert cli_main(["ingest", "--data-dir", str(plain), str(folder)], _settings(plain)) == 1
    assert "broken.pdf" in capsys.readouterr().err  # one bad file: exit 1, the others stored

    files = sorted(folder.iterdir())
    tally = ingest_with_ray(files, _settings(clustered), "default", RayIngestOptions())
    assert (tally.added, tally.duplicates) == (4, 0)
    assert len(tally.failures) == 1 and "broken.pdf" in tally.failures[0]
    assert _stored(clustered) == _stored(plain) and len(_stored(plain)) == 4
    assert _answers(_settings(clustered), embedder) == _answers(_settings(plain), embedder)

    again = ingest_with_ray(files, _settings(clustered), "default", RayIngestOptions())
    assert (again.added, again.duplicates, again.chunks) == (0, 4, 0)  # resumed: nothing twice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """``sieve serve --ray``'s application with auth on, two HTTP replicas."""
    from ray import serve

    from app.cluster.serve import RayServeOptions, build_application

    data_dir = tmp_path_factory.mktemp("served") / "data"
    settings = _settings(data_dir, auth=True, admin_key=ADMIN, rate_limit_per_s=0)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    metrics = str(tmp_path_factory.mktemp("metrics"))  # pytest's temporary tree keeps it
    app = build_application(settings, RayServeOptions(replicas=2), gpus=0, metrics_dir=metrics)
    serve.run(app, name="sieve")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        yield client
    serve.delete("sieve")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_two_replicas_share_documents_keys_and_isolation(served: httpx.Client) -> None:
    for name in (A, B):
        assert served.post("/admin/collections", json={"name": name}, headers=ADMIN_H).is_success
    keys = {}
    for name in (A, B):
        r = served.post(
            "/admin/keys", json={"collections": [name], "role": "write"}, headers=ADMIN_H
        )
        assert r.status_code == 201, r.text
        keys[name] = _bearer(r.json()["key"])
    assert served.post("/documents", json=A_DOC, headers=keys[A]).status_code == 201
    assert served.post("/documents", json=B_DOC, headers=keys[B]).status_code == 201

    # whichever replica answers knows the keys and the documents the other one stored
    replicas = set()
    for _ in range(12):
        r = served.post("/ask", json={"question": "Who mapped the salt caves?"}, headers=keys[A])
        assert r.status_code == 200, r.text
        assert [c["title"] for c in r.json()["citations"]][:1] == [A_DOC["title"]]
        assert "Prattlewick" not in r.text and "Quelbrook" not in r.text
        replicas.add(r.headers.get("x-sieve-replica"))
    assert len(replicas) == 2  # both replicas answered, with the same state
    for _ in range(6):
        asked_b = {"question": "Who invented the lantern?", "collection": B}
        assert served.post("/ask", json=asked_b, headers=keys[A]).status_code == 403
        assert served.post("/ask", json={"question": "Who?"}).status_code == 401

    # /metrics, whichever replica answers the scrape, counts the requests of both
    asked = 'sieve_http_requests_total{method="POST",route="/ask",status="200"} '
    for _ in range(4):
        lines = served.get("/metrics", headers=ADMIN_H).text.splitlines()
        assert [float(x.removeprefix(asked)) for x in lines if x.startswith(asked)] == [12.0]


def test_a_pruner_replica_killed_mid_load_loses_no_question(
    served: httpx.Client, ray_cluster: Any
) -> None:
    r = served.post("/admin/keys", json={"collections": [A], "role": "read"}, headers=ADMIN_H)
    key = _bearer(r.json()["key"])
    statuses: list[int] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        for j in range(4):
            body = {"question": f"Which caves did Oswin Threnody map? ({i}.{j})"}
            status = served.post("/ask", json=body, headers=key).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while not statuses:  # questions are flowing: kill the pruner replica under them
        time.sleep(0.05)
    from ray.util import list_named_actors

    [name] = [
        a["name"] for a in list_named_actors(all_namespaces=True) if "SievePruner" in a["name"]
    ]
    ray_cluster.kill(ray_cluster.get_actor(name, namespace="serve"), no_restart=True)
    for t in threads:
        t.join(300)
    assert statuses == [200] * 16
