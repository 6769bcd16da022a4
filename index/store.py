"""SQLite document store (WAL): documents, chunks, sentence offsets and chunk embeddings.

SQLite is the source of truth. The FAISS index is derived from the ``chunks.embedding`` column
and can always be rebuilt from it. Chunk ids come from AUTOINCREMENT, so an id is never reused
after a delete and stays valid as the FAISS id of its vector.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.records import ChunkRecord, DocumentRecord, NewDocument, SentenceRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    source        TEXT NOT NULL,
    format        TEXT NOT NULL,
    content_hash  TEXT NOT NULL UNIQUE,
    text          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    chunk_count   INTEGER NOT NULL,
    char_count    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    heading_path  TEXT NOT NULL,
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    page          INTEGER,
    text          TEXT NOT NULL,
    embedding     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id, ordinal);
CREATE TABLE IF NOT EXISTS sentences (
    chunk_id      INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    PRIMARY KEY (chunk_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL
);
"""


class MissingDocumentError(LookupError):
    """A document expected to be stored (by content hash) no longer is."""

    def __init__(self, content_hash: str) -> None:
        super().__init__(f"no document with content hash {content_hash}")
        self.content_hash = content_hash


@dataclass(frozen=True)
class StoredDocument:
    record: DocumentRecord
    chunk_ids: list[int]  # empty for a duplicate
    duplicate: bool


class DocumentStore:
    """Thread-safe access to one SQLite file. Every write is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- writes -------------------------------------------------------------------------
    def add_documents(self, docs: Sequence[NewDocument | str]) -> list[StoredDocument]:
        """Store documents with their chunks and sentences in ONE transaction.

        An entry may be a content hash instead of a document: the caller saw it stored already
        and expects a duplicate. A document whose content hash is already stored (or repeated in
        ``docs``) is not stored again: its result is the existing record with ``duplicate=True``.
        Raises ``MissingDocumentError`` (and stores nothing) when an expected hash is gone.
        """
        for doc in docs:
            if isinstance(doc, NewDocument) and not doc.chunks:
                raise ValueError(f"document {doc.id!r} has no chunks")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        stored: list[StoredDocument] = []
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for doc in docs:
                    digest = doc if isinstance(doc, str) else doc.content_hash
                    existing = cur.execute(
                        f"SELECT {_DOC_COLUMNS} FROM documents WHERE content_hash = ?", (digest,)
                    ).fetchone()
                    if existing is not None:
                        stored.append(StoredDocument(_document(existing), [], True))
                    elif isinstance(doc, str):
                        raise MissingDocumentError(doc)
                    else:
                        chunk_ids = self._insert(cur, doc, created)
                        row = cur.execute(
                            f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (doc.id,)
                        ).fetchone()
                        stored.append(StoredDocument(_document(row), chunk_ids, False))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return stored

    def _insert(self, cur: sqlite3.Cursor, doc: NewDocument, created: str) -> list[int]:
        cur.execute(
            "INSERT INTO documents (id, title, source, format, content_hash, text,"
            " metadata, created_at, chunk_count, char_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.id,
                doc.title,
                doc.source,
                doc.format,
                doc.content_hash,
                doc.text,
                json.dumps(doc.metadata),
                created,
                len(doc.chunks),
                len(doc.text),
            ),
        )
        chunk_ids: list[int] = []
        for ordinal, chunk in enumerate(doc.chunks):
            start, end = chunk.sentences[0][0], chunk.sentences[-1][1]
            cur.execute(
                "INSERT INTO chunks (document_id, ordinal, heading_path, start, end,"
                " page, text, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc.id,
                    ordinal,
                    json.dumps(list(chunk.heading_path)),
                    start,
                    end,
                    chunk.page,
                    doc.text[start:end],
                    chunk.embedding,
                ),
            )
            chunk_id = int(cur.lastrowid or 0)
            chunk_ids.append(chunk_id)
            cur.executemany(
                "INSERT INTO sentences (chunk_id, idx, start, end) VALUES (?, ?, ?, ?)",
                [(chunk_id, i, s, e) for i, (s, e) in enumerate(chunk.sentences)],
            )
        return chunk_ids

    def delete_documents(self, document_ids: Sequence[str]) -> list[int]:
        """Delete documents in one transaction (used to undo a failed ingest)."""
        removed: list[int] = []
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for doc_id in document_ids:
                    removed += [
                        int(r[0])
                        for r in cur.execute(
                            "SELECT id FROM chunks WHERE document_id = ?", (doc_id,)
                        )
                    ]
                    cur.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return removed

    def delete_document(self, document_id: str) -> list[int] | None:
        """Delete a document and (by cascade) its chunks; returns the removed chunk ids."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute("SELECT 1 FROM documents WHERE id = ?", (document_id,)).fetchone()
                if row is None:
                    cur.execute("ROLLBACK")
                    return None
                ids = [
                    int(r[0])
                    for r in cur.execute(
                        "SELECT id FROM chunks WHERE document_id = ?", (document_id,)
                    )
                ]
                cur.execute("DELETE FROM documents WHERE id = ?", (document_id,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return ids

    # ---- reads --------------------------------------------------------------------------
    def get_document(self, document_id: str) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        return _document(row) if row else None

    def find_by_hash(self, content_hash: str) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return _document(row) if row else None

    def get_text(self, document_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        return str(row[0]) if row else None

    def list_documents(self, limit: int = 100, offset: int = 0) -> list[DocumentRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY rowid LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [_document(r) for r in rows]

    def count_documents(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def count_chunks(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def get_chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]:
        """Chunks in the order asked for; ids that no longer exist are skipped."""
        if not chunk_ids:
            return []
        ids = [int(i) for i in chunk_ids]
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", ids
            ).fetchall()
            sentences = self._sentences([int(r["id"]) for r in rows])
        by_id = {int(r["id"]): _chunk(r, sentences.get(int(r["id"]), [])) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def chunks_of(self, document_id: str) -> list[ChunkRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE document_id = ? ORDER BY ordinal",
                (document_id,),
            ).fetchall()
            sentences = self._sentences([int(r["id"]) for r in rows])
        return [_chunk(r, sentences.get(int(r["id"]), [])) for r in rows]

    def chunk_ids(self) -> np.ndarray:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        return np.array([int(r[0]) for r in rows], dtype=np.int64)

    def iter_embeddings(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids (n,), vectors (n, D) float32) in id order, for rebuilding the vector index."""
        last = -1
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT id, embedding FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
            vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            last = int(ids[-1])
            yield ids, vectors

    def embeddings_for(self, chunk_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the given chunks that exist, in id order."""
        found_ids: list[int] = []
        vectors: list[np.ndarray] = []
        ids = sorted(int(i) for i in chunk_ids)
        with self._lock:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                marks = ",".join("?" * len(part))
                for r in self._conn.execute(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({marks}) ORDER BY id", part
                ):
                    found_ids.append(int(r[0]))
                    vectors.append(np.frombuffer(r[1], dtype=np.float32))
        if not vectors:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.array(found_ids, dtype=np.int64), np.stack(vectors)

    def data_version(self) -> int:
        """Changes whenever ANOTHER connection (e.g. another process) commits to the db."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _sentences(self, chunk_ids: list[int]) -> dict[int, list[tuple[int, int, int]]]:
        out: dict[int, list[tuple[int, int, int]]] = {}
        for i in range(0, len(chunk_ids), 900):  # stay under SQLite's variable limit
            part = chunk_ids[i : i + 900]
            marks = ",".join("?" * len(part))
            for r in self._conn.execute(
                f"SELECT chunk_id, idx, start, end FROM sentences WHERE chunk_id IN ({marks})"
                " ORDER BY chunk_id, idx",
                part,
            ):
                out.setdefault(int(r[0]), []).append((int(r[1]), int(r[2]), int(r[3])))
        return out


_DOC_COLUMNS = (
    "id, title, source, format, content_hash, metadata, created_at, chunk_count, char_count"
)
_CHUNK_COLUMNS = "id, document_id, ordinal, heading_path, start, end, page, text"


def _document(row: sqlite3.Row) -> DocumentRecord:
    return DocumentRecord(
        id=row["id"],
        title=row["title"],
        source=row["source"],
        format=row["format"],
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        chunk_count=int(row["chunk_count"]),
        char_count=int(row["char_count"]),
        metadata=json.loads(row["metadata"]),
    )


def _chunk(row: sqlite3.Row, sentences: list[tuple[int, int, int]]) -> ChunkRecord:
    base = int(row["start"])
    text = str(row["text"])
    return ChunkRecord(
        id=int(row["id"]),
        document_id=row["document_id"],
        ordinal=int(row["ordinal"]),
        heading_path=tuple(json.loads(row["heading_path"])),
        text=text,
        start=base,
        end=int(row["end"]),
        page=row["page"],
        sentences=[
            SentenceRecord(index=i, start=s, end=e, text=text[s - base : e - base])
            for i, s, e in sentences
        ],
    )
