"""Ingestion jobs: asynchronous uploads, status and progress, resumption after a restart, and
"done" committed with the documents or not at all."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.collections import Collections
from app.job_store import JobStore
from app.jobs import MAX_ATTEMPTS, JobFile, JobQueue
from app.main import create_app
from app.settings import Settings
from app.sieve import Sieve
from index import Embedder

TEXT = "The Velmor lighthouse was lit in 1891. Its keeper, Ines Garrow, logged every storm."


def _sieve(collections: Collections) -> Sieve:
    return Sieve(collections.settings, collections)


def _poll(client: TestClient, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout_s
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or time.time() > deadline:
            return job
        time.sleep(0.05)


def test_async_upload_is_a_job_that_ends_done(client: TestClient) -> None:
    r = client.post("/documents?wait=false", json={"title": "Velmor", "text": TEXT})
    assert r.status_code == 202 and r.headers["location"] == f"/jobs/{r.json()['id']}"
    assert r.json()["status"] in ("queued", "running", "done") and r.json()["total"] == 1
    job = _poll(client, r.json()["id"])
    assert job["status"] == "done" and job["done"] == 1 and job["error"] is None
    [doc] = job["documents"]
    assert doc["title"] == "Velmor" and not doc["duplicate"]
    assert client.get("/documents").json()["total"] == 1
    listed = client.get("/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_sync_upload_names_its_job(client: TestClient) -> None:
    body = client.post("/documents", json={"title": "Velmor", "text": TEXT}).json()
    assert client.get(f"/jobs/{body['job']}").json()["status"] == "done"
    assert client.get("/jobs/nope").status_code == 404


def test_bad_input_is_refused_before_any_job(client: TestClient) -> None:
    r = client.post(
        "/documents?wait=false", files={"files": ("x.txt", b"\x89PNG\r\n\x1a\n", "text/plain")}
    )
    assert r.status_code == 415
    assert client.get("/jobs").json()["jobs"] == []


def test_a_failed_job_says_why_and_stores_nothing(client: TestClient) -> None:
    first = {"title": "Velmor", "text": TEXT}
    assert client.post("/documents", json=first).status_code == 201
    # the same content under an external id: a conflict, found by the worker
    r = client.post("/documents?wait=false", json={**first, "external_id": "v-1"})
    job = _poll(client, r.json()["id"])
    assert job["status"] == "failed" and "already stored" in job["error"]
    assert client.get("/documents").json()["total"] == 1
    # waiting for it instead: the same reason as a 409
    r = client.post("/documents", json={**first, "external_id": "v-1"})
    assert r.status_code == 409 and "already stored" in r.json()["detail"]


@contextlib.contextmanager
def _sql(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A plain connection to the data dir's SQLite file, committed on exit."""
    db = sqlite3.connect(settings.db_path)
    try:
        with db:
            yield db
    finally:
        db.close()


def test_unfinished_jobs_resume_after_a_restart(settings: Settings, embedder: Embedder) -> None:
    collections = Collections(settings, embedder)
    queue = JobQueue(
        Sieve(collections.settings, collections)
    )  # never started: the process "died" with the job queued
    job = queue.submit("default", "local", [JobFile("file", "velmor.txt", TEXT.encode())])
    queue.close()
    collections.close()
    with TestClient(create_app(settings, embedder)) as client:
        done = _poll(client, job.id)
        assert done["status"] == "done" and done["documents"][0]["source"] == "velmor.txt"
        assert client.get("/documents").json()["total"] == 1
    store = JobStore(settings.db_path)
    assert store.file_count() == 0  # the stored upload is dropped once the job is finished
    store.close()


def test_a_job_that_keeps_crashing_is_given_up(settings: Settings, embedder: Embedder) -> None:
    collections = Collections(settings, embedder)
    queue = JobQueue(_sieve(collections))
    job = queue.submit("default", "local", [JobFile("file", "v.txt", TEXT.encode())])
    with _sql(settings) as db:  # the state a process killed mid-job leaves
        db.execute(
            "UPDATE jobs SET status = 'running', attempts = ? WHERE id = ?",
            (MAX_ATTEMPTS, job.id),
        )
    queue.start()
    stopped = queue.get(job.id)
    queue.close()
    collections.close()
    assert stopped is not None and stopped.status == "failed" and "gave up" in str(stopped.error)


def test_done_commits_with_the_documents(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexing fails after the SQLite commit: the documents are removed and the job that the
    same transaction had marked done ends failed."""
    collections = Collections(settings, embedder)
    collection = collections.default

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("graph exploded")

    monkeypatch.setattr(collection.graph, "add", broken)
    queue = JobQueue(_sieve(collections)).start()
    job = queue.submit("default", "local", [JobFile("file", "v.txt", TEXT.encode())], True)
    finished, error = queue.wait(job.id, timeout=60)
    queue.close()
    assert finished is not None and finished.status == "failed" and "graph exploded" in str(error)
    assert collections.store.count_documents() == 0 and len(collection.index.ids()) == 0
    collections.close()


def test_progress_counts_documents(settings: Settings, embedder: Embedder) -> None:
    collections = Collections(settings, embedder)
    queue = JobQueue(_sieve(collections)).start()
    files = [
        JobFile("file", f"d{i}.txt", f"{TEXT} Entry {i} of the log.".encode()) for i in range(3)
    ]
    job = queue.submit("default", "local", files, waiting=True)
    finished, _ = queue.wait(job.id, timeout=60)
    queue.close()
    collections.close()
    assert finished is not None and (finished.status, finished.done, finished.total) == (
        "done",
        3,
        3,
    )


def test_a_live_job_reuses_what_the_request_prepared(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker parses and chunks stored files only when it has nothing prepared (a resumed
    job)."""
    import app.collection
    import app.jobs
    from app.parsing import parse_document
    from app.prepared import prepare

    def refuse(*_: object) -> None:
        raise AssertionError("prepared again")

    monkeypatch.setattr(app.jobs, "prepare_job_file", refuse)
    monkeypatch.setattr(app.collection, "prepare", refuse)
    collections = Collections(settings, embedder)
    queue = JobQueue(_sieve(collections)).start()
    file = JobFile("file", "v.txt", TEXT.encode())
    ready = prepare(parse_document(file.data, file.name), file.name, settings.chunking)
    job = queue.submit("default", "local", [file], True, [ready])
    finished, error = queue.wait(job.id, timeout=60)
    queue.close()
    collections.close()
    assert error is None and finished is not None and finished.status == "done"


def test_an_upload_is_chunked_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload's check chunks each document; its job ingests those chunks."""
    import app.parsing.chunking as chunking

    real = chunking.chunk_document
    calls: list[str] = []

    def counted(doc: Any, *args: Any) -> Any:
        calls.append(doc.title)
        return real(doc, *args)

    monkeypatch.setattr(chunking, "chunk_document", counted)
    r = client.post("/documents", json={"title": "Velmor", "text": TEXT})
    assert r.status_code == 201, r.text
    assert calls == ["Velmor"]
    assert r.json()["documents"][0]["chunk_count"] == 1


def test_long_finished_jobs_are_forgotten_at_start(settings: Settings, embedder: Embedder) -> None:
    collections = Collections(settings, embedder)
    queue = JobQueue(_sieve(collections)).start()
    job = queue.submit("default", "local", [JobFile("file", "v.txt", TEXT.encode())], True)
    queue.wait(job.id, timeout=60)
    queue.close()
    with _sql(settings) as db:
        db.execute("UPDATE jobs SET updated_at = '2020-01-01T00:00:00.000+00:00'")
    fresh = JobQueue(_sieve(collections), keep_days=30).start()
    assert fresh.get(job.id) is None
    fresh.close()
    assert collections.store.count_documents() == 1  # only the job's record goes
    collections.close()


def test_an_async_waiter_that_times_out_or_is_cancelled_leaves_nothing_behind(
    settings: Settings, embedder: Embedder
) -> None:
    import asyncio

    collections = Collections(settings, embedder)
    queue = JobQueue(
        Sieve(collections.settings, collections)
    )  # not started: every job stays queued
    file = JobFile("file", "v.txt", TEXT.encode())

    async def scenario() -> tuple[str, str]:
        timed = queue.submit("default", "local", [file], True)
        job, error = await queue.wait_async(timed.id, timeout=0.05)
        assert job is not None and error is None
        cancelled = queue.submit("default", "local", [file], True)
        task = asyncio.create_task(queue.wait_async(cancelled.id, timeout=30))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return job.status, cancelled.status

    assert asyncio.run(scenario()) == ("queued", "queued")
    assert not queue._waiters and not queue._events and not queue._errors
    queue.close()
    collections.close()


def test_closing_leaves_queued_jobs_queued_with_their_files(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown while jobs wait: the one running finishes, the others stay queued (files kept)
    for the next start, and none is marked failed because its store closed under it."""
    import threading

    collections = Collections(settings, embedder)
    collection = collections.default
    release, running = threading.Event(), threading.Event()
    ingest = collection.ingest_prepared

    def slow(*args: Any, **kwargs: Any) -> Any:
        running.set()
        release.wait(30)
        return ingest(*args, **kwargs)

    monkeypatch.setattr(collection, "ingest_prepared", slow)
    queue = JobQueue(_sieve(collections)).start()
    first = queue.submit("default", "local", [JobFile("file", "a.txt", TEXT.encode())])
    second = queue.submit("default", "local", [JobFile("file", "b.txt", b"The Orsk ferry.")])
    assert running.wait(30)
    queue.close(timeout=0.1)  # the worker is busy: close returns, the queue is stopping
    release.set()
    queue._thread.join(30)
    done, waiting = queue.get(first.id), queue.get(second.id)
    assert done is not None and done.status == "done"
    assert waiting is not None and waiting.status == "queued"
    assert queue.store.files(second.id)  # its upload is kept for the next start
    queue.close()
    collections.close()


def test_processes_sharing_a_data_dir_run_each_job_once(
    settings: Settings, embedder: Embedder
) -> None:
    """`sieve serve --ray`'s replicas share the jobs table (lease_s > 0): a job another live
    process may be running is left alone, one left by a process that died is taken over once
    untouched for the lease, and a claim already taken is refused."""
    collections = Collections(settings, embedder)
    dead = JobQueue(_sieve(collections))  # never started: it "died" with the job queued
    job = dead.submit("default", "local", [JobFile("file", "velmor.txt", TEXT.encode())])
    live = JobQueue(_sieve(collections), lease_s=2.0).start()
    assert live.get(job.id).status == "queued"  # type: ignore[union-attr]  # not yet: maybe busy
    deadline = time.time() + 30
    while live.get(job.id).status != "done" and time.time() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    assert live.get(job.id).status == "done"  # type: ignore[union-attr]  # taken over
    assert not dead.store.claim(job.id, 0)  # the dead one's claim comes too late
    assert collections.store.count_documents() == 1
    live.close()
    dead.close()
    collections.close()


def test_a_run_that_lost_its_job_commits_nothing(settings: Settings, embedder: Embedder) -> None:
    """A run whose job another process took over (after its lease ran out) can neither commit
    the job's documents nor mark it failed."""
    from app.job_store import JobTakenError, mark_done
    from app.parsing import parse_text

    collections = Collections(settings, embedder)
    queue = JobQueue(_sieve(collections))  # never started
    job = queue.submit("default", "local", [JobFile("file", "v.txt", TEXT.encode())])
    assert queue.store.claim(job.id, 0)  # the first run holds attempt 1
    assert queue.store.claim(job.id, 1)  # taken over: attempt 2
    assert not queue.store.claim(job.id, 1)  # one holder at a time
    with pytest.raises(JobTakenError):
        collections.default.ingest(
            [(parse_text("Velmor", TEXT), "v.txt")],
            on_commit=lambda cur, results: mark_done(cur, job.id, [], 1),
        )
    assert collections.store.count_documents() == 0  # rolled back with the "done"
    assert not queue.store.finish(job.id, "failed", "lost", 1)
    assert queue.get(job.id).status == "running"  # type: ignore[union-attr]  # attempt 2's
    assert queue.store.file_count() == 1  # its files stay for the holder
    queue.close()
    collections.close()


def test_a_slow_job_keeps_its_lease(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step longer than the lease (a slow embedding call) does not let a second process
    sharing the data dir take the job over: the running one renews its lease meanwhile."""
    real = Sieve.ingest

    def slow(self: Sieve, *args: Any, **kw: Any) -> Any:
        time.sleep(1.5)
        return real(self, *args, **kw)

    monkeypatch.setattr(Sieve, "ingest", slow)
    collections = Collections(settings, embedder)
    first = JobQueue(_sieve(collections), lease_s=0.4).start()
    job = first.submit("default", "local", [JobFile("file", "v.txt", TEXT.encode())])
    second = JobQueue(_sieve(collections), lease_s=0.4).start()  # sweeps every 0.2 s
    deadline = time.time() + 30
    while first.get(job.id).status != "done" and time.time() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    done = first.get(job.id)
    assert done is not None and done.status == "done" and done.attempts == 1  # never taken over
    assert collections.store.count_documents() == 1
    second.close()
    first.close()
    collections.close()
