"""Ingestion as persisted jobs: an upload is stored in SQLite (its files as sent) before any
work, then a background worker embeds and indexes it (the documents the request prepared while
checking them, or, for a resumed job, those its stored files give again).

Crash safety comes from two facts. A job's documents are stored in ONE SQLite transaction, and
that same transaction marks the job done (``Sieve.ingest_prepared(on_commit=…)``), so a process
killed at any point leaves the job either done with all its documents, or unfinished with none
of them. At start-up unfinished jobs are resumed from their stored files (a job that keeps killing
the process is given up after ``MAX_ATTEMPTS``); the FAISS, BM25 and graph files are reconciled
with SQLite when a collection opens, so they follow.

Several processes may share one data dir (``sieve serve --ray``'s HTTP replicas): then
``lease_s`` > 0, a job runs in the process that claims it first (:meth:`JobStore.claim`), and a
job left queued or running by a process that died is taken over by another once nobody has
touched it for ``lease_s`` (a running job touches it at every step).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from app.collection import IngestResult
from app.job_store import Job, JobStore, Status, mark_done
from app.prepared import Prepared
from app.sieve import Sieve
from app.uploads import JobFile, UploadLimits, check_file

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # starts of one job; past this a job that crashes the process is failed
# bytes of prepared documents (text and chunk offsets) kept in memory for queued jobs (the request
# parsed and chunked them to check them); past it a job's documents are prepared again from its
# stored files when it runs
PREPARED_CACHE_BYTES = 128 * 1024 * 1024


class QueueFullError(RuntimeError):
    """Too many ingestion jobs are waiting; the client should retry later."""

    retry_after_s = 5


def prepare_job_file(f: JobFile, limits: UploadLimits) -> Prepared:
    """The prepared document of one stored file, read as an upload is checked (within the
    limits, PDF, docx and HTML in a child process)."""
    return check_file(f, limits)


class JobQueue:
    """Persisted ingestion jobs and the one worker thread that runs them in order."""

    def __init__(
        self,
        sieve: Sieve,
        max_queued: int = 256,
        keep_days: float = 30.0,
        limits: UploadLimits | None = None,
        lease_s: float = 0.0,
    ) -> None:
        """``lease_s`` 0: this process owns the data dir's jobs (it resumes every unfinished one
        at start); > 0: see the module docstring."""
        self.sieve = sieve  # ingests each job (all or nothing) into its collection
        # for stored files parsed again (resumed jobs); default: the settings' defaults
        self.limits = limits or UploadLimits.of(sieve.settings)
        self.store = JobStore(sieve.settings.db_path)
        self.max_queued = max_queued
        self.keep_days = keep_days  # finished jobs older than this are dropped at start
        self.lease_s = lease_s
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()  # (id, attempts)
        self._events: dict[str, threading.Event] = {}
        # callers awaiting a job on an event loop: woken from the worker thread, hold no thread
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._errors: dict[str, Exception] = {}  # why a job failed, for a caller waiting on it
        # documents the request already prepared (to check them): the worker need not parse and
        # chunk the stored files again. A resumed job, or one past PREPARED_CACHE_BYTES, does.
        self._prepared: dict[str, list[Prepared]] = {}
        self._prepared_bytes = 0
        self._events_lock = threading.Lock()
        self._stopping = threading.Event()  # set by close(): start no job, fail none
        self._thread = threading.Thread(target=self._work, name="sieve-ingest", daemon=True)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> JobQueue:
        """Resume the jobs a previous process left unfinished, then start the worker."""
        cutoff = (datetime.now(UTC) - timedelta(days=self.keep_days)).isoformat(
            timespec="milliseconds"
        )
        self.store.tidy(cutoff)
        self._resume()
        self._thread.start()
        return self

    def _resume(self) -> None:
        """Queue the unfinished jobs nobody else works on: all of them when this process owns
        the data dir, else those untouched for ``lease_s``."""
        idle = None
        if self.lease_s > 0:
            idle = (datetime.now(UTC) - timedelta(seconds=self.lease_s)).isoformat(
                timespec="milliseconds"
            )
        for job_id, attempts in self.store.unfinished(idle):
            if attempts >= MAX_ATTEMPTS:
                self._finish(job_id, "failed", f"gave up after {MAX_ATTEMPTS} attempts")
                continue
            logger.info("resuming ingestion job %s", job_id)
            self._queue.put((job_id, attempts))

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the job in progress: queued jobs stay queued for the next start, and a job
        that fails while the service closes (its store closed under it) stays unfinished, to be
        run again, never marked failed."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():  # a job still running keeps its connection
            self.store.close()

    # ---- API ------------------------------------------------------------------------------------
    def submit(
        self,
        collection: str,
        owner: str,
        files: Sequence[JobFile],
        waiting: bool = False,
        prepared: Sequence[Prepared] | None = None,
    ) -> Job:
        """Persist a job with its files (one transaction) and queue it; ``waiting``: the caller
        will :meth:`wait` for it (and gets the exception it fails with); ``prepared``: the files'
        documents as :func:`prepare_job_file` gives them, when the caller has them already."""
        if prepared is not None and len(prepared) != len(files):
            raise ValueError("one prepared document per file")
        if not files:
            raise ValueError("a job needs at least one document")
        if self.pending() >= self.max_queued:
            raise QueueFullError(f"{self.max_queued} ingestion jobs are waiting; try again later")
        job_id = uuid.uuid4().hex
        self.store.add(job_id, collection, owner, files)
        with self._events_lock:
            if waiting:
                self._events[job_id] = threading.Event()
            size = _footprint(prepared) if prepared is not None else 0
            if prepared is not None and self._prepared_bytes + size <= PREPARED_CACHE_BYTES:
                self._prepared[job_id] = list(prepared)
                self._prepared_bytes += size
        self._queue.put((job_id, 0))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def list(self, collection: str, limit: int = 50) -> list[Job]:
        return self.store.of_collection(collection, limit)

    def pending(self) -> int:
        return self.store.pending()

    def wait(
        self, job_id: str, timeout: float | None = None
    ) -> tuple[Job | None, Exception | None]:
        """Block until the job is finished (or ``timeout``): the job as it is then, and the
        exception it failed with (once, to the first caller that asks; None after a restart)."""
        with self._events_lock:
            event = self._events.get(job_id)
        if event is not None:
            event.wait(timeout)
        with self._events_lock:
            error = self._errors.pop(job_id, None)
        return self.get(job_id), error

    async def wait_async(self, job_id: str, timeout: float) -> tuple[Job | None, Exception | None]:
        """:meth:`wait` for an event loop: holds no thread while the job runs. After
        ``timeout`` the job is returned as it is (still queued or running), and its error, if it
        fails later, stays for GET /jobs/{id} (as ``error``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._events_lock:
            event = self._events.get(job_id)
            if event is not None and not event.is_set():
                self._waiters.setdefault(job_id, []).append((loop, future))
            else:
                future.set_result(None)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            self._forget_waiter(job_id, loop, future)  # timed out, or the client went away
            if isinstance(stopped, asyncio.CancelledError):
                raise
            return self.get(job_id), None
        with self._events_lock:
            error = self._errors.pop(job_id, None)
        return self.get(job_id), error

    def _forget_waiter(
        self, job_id: str, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]
    ) -> None:
        """Drop one waiter; with none left, nobody will read the job's exception either."""
        with self._events_lock:
            waiting = self._waiters.get(job_id, [])
            if (loop, future) in waiting:
                waiting.remove((loop, future))
            if not waiting:
                self._waiters.pop(job_id, None)
                self._events.pop(job_id, None)
                self._errors.pop(job_id, None)

    # ---- worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            try:  # sharing the data dir: when idle, look for jobs a dead process left
                item = self._queue.get(timeout=self.lease_s / 2 if self.lease_s > 0 else None)
            except queue.Empty:
                try:
                    self._resume()
                except Exception:  # a busy database must not stop the worker
                    logger.exception("looking for ingestion jobs left by other processes failed")
                continue
            if item is None or self._stopping.is_set():
                return
            job_id, attempts = item
            try:
                self._run(job_id, attempts)
            except Exception as exc:  # never let one job stop the worker
                if self._stopping.is_set():
                    logger.warning("ingestion job %s left unfinished at shutdown: %s", job_id, exc)
                    return
                logger.exception("ingestion job %s failed", job_id)
                self._finish(job_id, "failed", f"internal error: {exc}", exc)

    def _run(self, job_id: str, attempts: int) -> None:
        with self._events_lock:
            ready = self._prepared.pop(job_id, None)
            self._prepared_bytes -= _footprint(ready or [])
        job = self.get(job_id)
        if job is None or job.finished or not self.store.claim(job_id, attempts):
            self._release(job_id, None)  # finished, or another process sharing the data dir runs it
            return
        attempt = attempts + 1  # this run's: only it may write the job from now on
        files = self.store.files(job_id)
        try:
            with self._heartbeat(job_id, attempt):
                prepared = (
                    ready
                    if ready is not None
                    else [prepare_job_file(f, self.limits) for f in files]
                )

                def done_with(cur: sqlite3.Cursor, results: list[IngestResult]) -> None:
                    mark_done(cur, job_id, [_result(r) for r in results], attempt)

                self.sieve.ingest_prepared(
                    job.collection,
                    prepared,
                    on_commit=done_with,
                    progress=lambda n, _total: self.store.progress(job_id, n, attempt),
                )
        except Exception as exc:  # a file that no longer parses, a conflict, a failed index
            if self._stopping.is_set():  # perhaps only because the service is closing
                logger.warning("ingestion job %s left unfinished at shutdown: %s", job_id, exc)
                return
            logger.warning("ingestion job %s failed: %s", job_id, exc)
            self._finish(job_id, "failed", str(exc) or type(exc).__name__, exc, attempt)
            return
        self._finish(job_id, None, None, attempt=attempt)

    @contextlib.contextmanager
    def _heartbeat(self, job_id: str, attempt: int) -> Iterator[None]:
        """Sharing the data dir: renew the job's lease every quarter of it while it runs (one
        step, an embedding call or a commit, may outlast the lease)."""
        if self.lease_s <= 0:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_s / 4):
                try:
                    self.store.progress(job_id, None, attempt)
                except Exception:  # a busy database: the next beat tries again
                    logger.warning("could not renew the lease of ingestion job %s", job_id)

        beater = threading.Thread(target=beat, name="sieve-job-lease", daemon=True)
        beater.start()
        try:
            yield
        finally:
            stop.set()
            beater.join(5)

    def _finish(
        self,
        job_id: str,
        status: Status | None,
        error: str | None,
        exc: Exception | None = None,
        attempt: int | None = None,
    ) -> None:
        """Drop the job's stored files; set a final status unless the ingest did (done); only
        as the holder of ``attempt`` (a job taken over is left to its new holder)."""
        held = self.store.finish(job_id, status, error, attempt)
        self._release(job_id, exc if held else None)

    def _release(self, job_id: str, exc: Exception | None) -> None:
        """Wake whoever waits on the job here (they read its state from the store)."""
        with self._events_lock:
            event = self._events.pop(job_id, None)
            if event is not None and exc is not None:
                self._errors[job_id] = exc
            waiters = self._waiters.pop(job_id, [])
        if event is not None:
            event.set()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _footprint(prepared: Sequence[Prepared]) -> int:
    return sum(p.footprint() for p in prepared)


def _result(r: IngestResult) -> dict[str, Any]:
    return {"document": asdict(r.document), "duplicate": r.duplicate, "replaced": r.replaced}
