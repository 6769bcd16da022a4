"""The ``jobs`` and ``job_files`` tables of the data dir's SQLite file, through their own
connection (thread-safe), as ``KeyStore`` keeps ``api_keys``. app/jobs.py runs the jobs; this
module only stores them.

One write goes through another connection on purpose: a job is marked done by
:func:`mark_done` inside the transaction that stores its documents (``Collection.ingest``'s
``on_commit``), so a crash leaves it either done with all its documents or unfinished with none.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from app.uploads import JobFile
from index.sqlite import connect, write_transaction

Status = Literal["queued", "running", "done", "failed"]
# a write by the holder of one claimed attempt (None: by whoever), to append to a WHERE
_HOLDER = " AND (? IS NULL OR attempts = ?)"

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

_COLUMNS = (
    "id, collection, owner, status, total, done, attempts, error, result, created_at, updated_at"
)


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


class JobStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # writes and reads on connections of their own: a write waiting (up to 30 s) for the
        # documents' transaction to commit never holds up a status read (WAL readers do not
        # wait for writers)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._transaction() as cur:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
        self._read_lock = threading.Lock()
        self._reader = connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        """One short write transaction; nothing else is called while it is open."""
        return write_transaction(self._conn, self._lock)

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._read_lock:
            return self._reader.execute(sql, list(args)).fetchall()

    # ---- jobs -------------------------------------------------------------------------------
    def add(self, job_id: str, collection: str, owner: str, files: Sequence[JobFile]) -> None:
        """A queued job with its files, in one transaction."""
        now = _now()
        with self._transaction() as cur:
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

    def get(self, job_id: str) -> Job | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def of_collection(self, collection: str, limit: int = 50) -> list[Job]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM jobs WHERE collection = ? ORDER BY created_at DESC, rowid DESC"
            " LIMIT ?",
            (collection, limit),
        )
        return [_job(r) for r in rows]

    def pending(self) -> int:
        """Jobs queued or running."""
        rows = self._query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
        return int(rows[0][0])

    def unfinished(self, idle_since: str | None = None) -> list[tuple[str, int]]:
        """(id, attempts) of the jobs queued or running, oldest first; ``idle_since`` (ISO
        time): only those nobody touched since (no process sharing the data dir works on them)."""
        rows = self._query(
            "SELECT id, attempts FROM jobs WHERE status IN ('queued', 'running')"
            " AND updated_at < ? ORDER BY created_at, rowid",
            (idle_since or "9999",),
        )
        return [(r["id"], int(r["attempts"])) for r in rows]

    def tidy(self, before: str) -> None:
        """Drop the files of finished jobs (a crash just after finishing leaves them) and the
        finished jobs last updated before ``before`` (ISO time)."""
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM job_files WHERE job_id IN"
                " (SELECT id FROM jobs WHERE status IN ('done', 'failed'))"
            )
            cur.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < ?",
                (before,),
            )

    def files(self, job_id: str) -> list[JobFile]:
        rows = self._query(
            "SELECT kind, name, content_type, external_id, data FROM job_files"
            " WHERE job_id = ? ORDER BY idx",
            (job_id,),
        )
        return [
            JobFile(r["kind"], r["name"], bytes(r["data"]), r["content_type"], r["external_id"])
            for r in rows
        ]

    def file_count(self) -> int:
        """Stored files of all jobs (none once every job is finished)."""
        return int(self._query("SELECT COUNT(*) FROM job_files")[0][0])

    def claim(self, job_id: str, attempts: int) -> bool:
        """Take the job to run it (running, one more attempt), unless someone took or finished
        it since it was read with ``attempts``: of several processes sharing the data dir, one
        runs it."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?"
                " WHERE id = ? AND attempts = ? AND status IN ('queued', 'running')",
                (_now(), job_id, attempts),
            )
            return cur.rowcount == 1

    def progress(self, job_id: str, done: int | None, attempt: int | None = None) -> None:
        """Documents done so far (None: unchanged), and the job touched (its lease renewed):
        only by the holder of ``attempt`` (None: whoever)."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE jobs SET done = COALESCE(?, done), updated_at = ? WHERE id = ?" + _HOLDER,
                (done, _now(), job_id, attempt, attempt),
            )

    def finish(
        self, job_id: str, status: Status | None, error: str | None, attempt: int | None = None
    ) -> bool:
        """Drop the job's stored files; set a final status unless :func:`mark_done` did. Only
        by the holder of ``attempt`` (None: whoever): False, and nothing done, when another
        process took the job over."""
        with self._transaction() as cur:
            held = cur.execute(
                "SELECT 1 FROM jobs WHERE id = ?" + _HOLDER, (job_id, attempt, attempt)
            )
            if held.fetchone() is None:
                return False
            if status is not None:
                _mark(cur, job_id, status, error, None, None)
            cur.execute("DELETE FROM job_files WHERE job_id = ?", (job_id,))
        return True


class JobTakenError(RuntimeError):
    """Another process sharing the data dir took the job over: this run must not commit."""


def mark_done(
    cur: sqlite3.Cursor, job_id: str, results: list[dict[str, Any]], attempt: int | None = None
) -> None:
    """Mark a job done with its results through ``cur``: the transaction that stores its
    documents (another connection to the same file). ``JobTakenError`` (which rolls the
    documents back) when ``attempt`` no longer holds the job."""
    if not _held(cur, job_id, attempt):
        raise JobTakenError(f"job {job_id} was taken over by another process")
    _mark(cur, job_id, "done", None, results, len(results))


def _held(cur: sqlite3.Cursor, job_id: str, attempt: int | None) -> bool:
    """Whether ``attempt`` still holds the job (None: whoever asks does)."""
    query = "SELECT 1 FROM jobs WHERE id = ?" + _HOLDER
    return cur.execute(query, (job_id, attempt, attempt)).fetchone() is not None


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
