"""Ingestion as persisted jobs: an upload is stored in SQLite (its files as sent) before any
work, then a background worker parses, embeds and indexes it.

Crash safety comes from two facts. A job's documents are stored in ONE SQLite transaction, and
that same transaction marks the job done (``Library.ingest(on_commit=…)``), so a process killed
at any point leaves the job either done with all its documents, or unfinished with none of
them. At start-up unfinished jobs are resumed from their stored files (a job that keeps killing
the process is given up after ``MAX_ATTEMPTS``); the FAISS, BM25 and graph files are reconciled
with SQLite when a collection opens, so they follow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from app.collections import Collections
from app.library import IngestResult
from app.parsing import ParsedDocument
from app.uploads import JobFile, UploadLimits, check_file

logger = logging.getLogger(__name__)

Status = Literal["queued", "running", "done", "failed"]
MAX_ATTEMPTS = 3  # starts of one job; past this a job that crashes the process is failed
# characters of parsed documents kept in memory for queued jobs (the request parsed them to check
# them); past it a job's documents are parsed again from its stored files when it runs
PARSED_CACHE_CHARS = 32_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    collection    TEXT NOT NULL,
    owner         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    total         INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    result        TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_collection ON jobs(collection, created_at);
CREATE TABLE IF NOT EXISTS job_files (
    job_id        TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('file', 'json')),
    name          TEXT NOT NULL,
    content_type  TEXT,
    external_id   TEXT,
    data          BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
"""


class QueueFullError(RuntimeError):
    """Too many ingestion jobs are waiting; the client should retry later."""

    retry_after_s = 5


@dataclass(frozen=True)
class Job:
    id: str
    collection: str
    owner: str  # who submitted it (API key id, "admin" or "local"); never a secret
    status: Status
    total: int  # documents in the job
    done: int  # documents parsed and embedded so far
    attempts: int
    error: str | None
    result: list[dict[str, Any]] | None  # per document: {document, duplicate, replaced}
    created_at: str
    updated_at: str

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def parse_job_file(f: JobFile, limits: UploadLimits) -> ParsedDocument:
    """The document of one stored file, read as an upload is checked (within the limits, PDF,
    docx and HTML in a child process)."""
    return check_file(f, limits).document


class JobQueue:
    """Persisted ingestion jobs and the one worker thread that runs them in order."""

    def __init__(
        self,
        collections: Collections,
        max_queued: int = 256,
        keep_days: float = 30.0,
        limits: UploadLimits | None = None,
    ) -> None:
        self.collections = collections
        # for stored files parsed again (resumed jobs); default: the settings' defaults
        self.limits = limits or UploadLimits.of(collections.settings)
        self.store = collections.store
        self.store.ensure_schema(SCHEMA)
        self.max_queued = max_queued
        self.keep_days = keep_days  # finished jobs older than this are dropped at start
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._events: dict[str, threading.Event] = {}
        # callers awaiting a job on an event loop: woken from the worker thread, hold no thread
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._errors: dict[str, Exception] = {}  # why a job failed, for a caller waiting on it
        # documents the request already parsed (to check them): the worker need not parse the
        # stored files again. A resumed job, or one past PARSED_CACHE_CHARS, parses its files.
        self._parsed: dict[str, list[ParsedDocument]] = {}
        self._parsed_chars = 0
        self._events_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="sieve-ingest", daemon=True)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> JobQueue:
        """Resume the jobs a previous process left unfinished, then start the worker."""
        cutoff = (datetime.now(UTC) - timedelta(days=self.keep_days)).isoformat(
            timespec="milliseconds"
        )
        with self.store.transaction() as cur:
            cur.execute(  # files of jobs finished just before a crash
                "DELETE FROM job_files WHERE job_id IN"
                " (SELECT id FROM jobs WHERE status IN ('done', 'failed'))"
            )
            cur.execute(  # the history of long-finished jobs
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < ?",
                (cutoff,),
            )
        rows = self.store.query(
            "SELECT id, attempts FROM jobs WHERE status IN ('queued', 'running')"
            " ORDER BY created_at, rowid"
        )
        for row in rows:
            if int(row["attempts"]) >= MAX_ATTEMPTS:
                self._finish(row["id"], "failed", f"gave up after {MAX_ATTEMPTS} attempts")
                continue
            logger.info("resuming ingestion job %s", row["id"])
            self._queue.put(row["id"])
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the job in progress (queued jobs stay queued for the next start)."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- API ------------------------------------------------------------------------------------
    def submit(
        self,
        collection: str,
        owner: str,
        files: Sequence[JobFile],
        waiting: bool = False,
        parsed: Sequence[ParsedDocument] | None = None,
    ) -> Job:
        """Persist a job with its files (one transaction) and queue it; ``waiting``: the caller
        will :meth:`wait` for it (and gets the exception it fails with); ``parsed``: the files'
        documents as :func:`parse_job_file` gives them, when the caller has them already."""
        if parsed is not None and len(parsed) != len(files):
            raise ValueError("one parsed document per file")
        if not files:
            raise ValueError("a job needs at least one document")
        if self.pending() >= self.max_queued:
            raise QueueFullError(f"{self.max_queued} ingestion jobs are waiting; try again later")
        job_id = uuid.uuid4().hex
        now = _now()
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO jobs (id, collection, owner, status, total, created_at, updated_at)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, collection, owner, len(files), now, now),
            )
            cur.executemany(
                "INSERT INTO job_files (job_id, idx, kind, name, content_type, external_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (job_id, i, f.kind, f.name, f.content_type, f.external_id, f.data)
                    for i, f in enumerate(files)
                ],
            )
        with self._events_lock:
            if waiting:
                self._events[job_id] = threading.Event()
            chars = sum(len(d.text) for d in parsed) if parsed is not None else 0
            if parsed is not None and self._parsed_chars + chars <= PARSED_CACHE_CHARS:
                self._parsed[job_id] = list(parsed)
                self._parsed_chars += chars
        self._queue.put(job_id)
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list(self, collection: str, limit: int = 50) -> list[Job]:
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM jobs WHERE collection = ? ORDER BY created_at DESC, rowid DESC"
            " LIMIT ?",
            (collection, limit),
        )
        return [_job(r) for r in rows]

    def pending(self) -> int:
        rows = self.store.query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
        return int(rows[0][0])

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
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception as exc:  # never let one job stop the worker
                logger.exception("ingestion job %s failed", job_id)
                self._finish(job_id, "failed", f"internal error: {exc}", exc)

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None or job.finished:
            return
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?"
                " WHERE id = ?",
                (_now(), job_id),
            )
        files = [
            JobFile(r["kind"], r["name"], bytes(r["data"]), r["content_type"], r["external_id"])
            for r in self.store.query(
                "SELECT kind, name, content_type, external_id, data FROM job_files"
                " WHERE job_id = ? ORDER BY idx",
                (job_id,),
            )
        ]
        with self._events_lock:
            ready = self._parsed.pop(job_id, None)
            self._parsed_chars -= sum(len(d.text) for d in ready or [])
        try:
            parsed = ready if ready is not None else [parse_job_file(f, self.limits) for f in files]
            documents = [(doc, f.name) for doc, f in zip(parsed, files, strict=True)]
            library = self.collections.get(job.collection)

            def done_with(cur: sqlite3.Cursor, results: list[IngestResult]) -> None:
                _mark(cur, job_id, "done", None, [_result(r) for r in results], len(results))

            library.ingest(
                documents,
                [f.external_id for f in files],
                on_commit=done_with,
                progress=lambda n, _total: self._progress(job_id, n),
            )
        except Exception as exc:  # a file that no longer parses, a conflict, a failed index
            logger.warning("ingestion job %s failed: %s", job_id, exc)
            self._finish(job_id, "failed", str(exc) or type(exc).__name__, exc)
            return
        self._finish(job_id, None, None)

    def _progress(self, job_id: str, done: int) -> None:
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET done = ?, updated_at = ? WHERE id = ?", (done, _now(), job_id)
            )

    def _finish(
        self,
        job_id: str,
        status: Status | None,
        error: str | None,
        exc: Exception | None = None,
    ) -> None:
        """Drop the job's stored files; set a final status unless the ingest did (done)."""
        with self.store.transaction() as cur:
            if status is not None:
                _mark(cur, job_id, status, error, None, None)
            cur.execute("DELETE FROM job_files WHERE job_id = ?", (job_id,))
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


_COLUMNS = (
    "id, collection, owner, status, total, done, attempts, error, result, created_at, updated_at"
)


def _mark(
    cur: sqlite3.Cursor,
    job_id: str,
    status: Status,
    error: str | None,
    result: list[dict[str, Any]] | None,
    done: int | None,
) -> None:
    cur.execute(
        "UPDATE jobs SET status = ?, error = ?, result = COALESCE(?, result),"
        " done = COALESCE(?, done), updated_at = ? WHERE id = ?",
        (status, error, json.dumps(result) if result is not None else None, done, _now(), job_id),
    )


def _result(r: IngestResult) -> dict[str, Any]:
    return {"document": asdict(r.document), "duplicate": r.duplicate, "replaced": r.replaced}


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        collection=row["collection"],
        owner=row["owner"],
        status=row["status"],
        total=int(row["total"]),
        done=int(row["done"]),
        attempts=int(row["attempts"]),
        error=row["error"],
        result=json.loads(row["result"]) if row["result"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
