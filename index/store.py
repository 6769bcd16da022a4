"""SQLite document store (WAL): documents, chunks, sentence offsets and chunk embeddings.

SQLite is the source of truth. The FAISS index is derived from the ``chunks.embedding`` column
and can always be rebuilt from it. Chunk ids come from AUTOINCREMENT, so an id is never reused
after a delete and stays valid as the FAISS id of its vector.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.records import ChunkRecord, DocumentRecord, NewChunk, NewDocument
from index.rows import (
    CHUNK_COLUMNS,
    DOC_COLUMNS,
    chunk_of,
    document_of,
    exists,
    now,
    scoped,
)
from index.schema import DEFAULT_COLLECTION, SCHEMA, SCHEMA_VERSION, migrate
from index.sqlite import connect, write_transaction

# re-exported for callers of the store module
__all__ = [
    "DEFAULT_COLLECTION",
    "SCHEMA",
    "SCHEMA_VERSION",
    "CollectionInfo",
    "ContentConflictError",
    "DocumentStore",
    "MissingDocumentError",
    "StoredDocument",
    "UnknownCollectionError",
]


class MissingDocumentError(LookupError):
    """A document expected to be stored (by content hash) no longer is."""

    def __init__(self, content_hash: str) -> None:
        super().__init__(f"no document with content hash {content_hash}")
        self.content_hash = content_hash


class ContentConflictError(ValueError):
    """The content of a document with an external id is already stored in the collection as
    another document (without that external id): storing it again would break dedup."""

    def __init__(self, external_id: str, existing: DocumentRecord) -> None:
        super().__init__(
            f"external id {external_id!r}: the same content is already stored as document "
            f"{existing.id!r}"
            + (f" (external id {existing.external_id!r})" if existing.external_id else "")
        )
        self.external_id = external_id
        self.existing = existing

    def __reduce__(self) -> tuple[type, tuple[str, DocumentRecord]]:
        return (type(self), (self.external_id, self.existing))  # crosses processes (Ray)


class UnknownCollectionError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no collection named {name!r}")
        self.name = name


@dataclass(frozen=True)
class StoredDocument:
    record: DocumentRecord
    chunk_ids: list[int]  # empty for a duplicate
    duplicate: bool
    # the document with the same external id that this one replaced, as it was (to restore it
    # when indexing the new one fails), and the chunk ids it had
    replaced: NewDocument | None = None
    removed_chunk_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    created_at: str
    documents: int
    chunks: int


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600, or take group/other access away from an existing
    one (earlier versions made it 0644): documents and API key hashes are the owner's only."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)


class DocumentStore:
    """Thread-safe access to one SQLite file. Every write is one transaction.

    Every document belongs to one collection; reads that take a ``collection`` see that
    collection only (``None``: all of them, for maintenance and the operator)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
        self._lock = threading.RLock()
        self._conn = connect(self.path)
        migrate(self._conn)
        self._conn.execute("PRAGMA foreign_keys=ON")
        self.create_collection(DEFAULT_COLLECTION)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        """One write transaction on this connection."""
        return write_transaction(self._conn, self._lock)

    # ---- collections ------------------------------------------------------------------------
    def create_collection(self, name: str) -> bool:
        """Create a collection; False when it exists already."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO collections (name, created_at) VALUES (?, ?)",
                (name, now()),
            )
            return cur.rowcount > 0

    def has_collection(self, name: str) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,))
            return row.fetchone() is not None

    def collection_names(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT name FROM collections ORDER BY name").fetchall()
        return [str(r[0]) for r in rows]

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.name, c.created_at,"
                " (SELECT COUNT(*) FROM documents d WHERE d.collection = c.name),"
                " (SELECT COUNT(*) FROM chunks k WHERE k.collection = c.name)"
                " FROM collections c ORDER BY c.name"
            ).fetchall()
        return [CollectionInfo(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    # ---- writes -------------------------------------------------------------------------
    def add_documents(
        self,
        docs: Sequence[NewDocument | str],
        collection: str = DEFAULT_COLLECTION,
        on_commit: Callable[[sqlite3.Cursor, list[StoredDocument]], None] | None = None,
    ) -> list[StoredDocument]:
        """Store documents of one collection with their chunks and sentences in ONE transaction.

        An entry may be a content hash instead of a document: the caller saw it stored already
        and expects a duplicate. A document whose content hash is already stored in the
        collection (or repeated in ``docs``) is not stored again: its result is the existing
        record with ``duplicate=True``. A document with an external id replaces the document
        holding that id (same transaction); same content → a duplicate. Raises
        ``MissingDocumentError`` (and stores nothing) when an expected hash is gone,
        ``ContentConflictError`` when an external id's content is stored under another id.
        ``on_commit(cursor, stored)`` runs last inside the same transaction (e.g. to mark an
        ingestion job done atomically with its documents).
        """
        external = [d.external_id for d in docs if isinstance(d, NewDocument) and d.external_id]
        if len(external) != len(set(external)):
            raise ValueError("the same external id twice in one batch")
        for doc in docs:
            if isinstance(doc, NewDocument):
                if not doc.chunks:
                    raise ValueError(f"document {doc.id!r} has no chunks")
                if doc.collection != collection:
                    raise ValueError(f"document {doc.id!r} is not in collection {collection!r}")
        created = now()
        stored: list[StoredDocument] = []
        with self.transaction() as cur:
            if not exists(cur, collection):
                raise UnknownCollectionError(collection)
            for doc in docs:
                stored.append(self._add_one(cur, doc, collection, created))
            if on_commit is not None:
                on_commit(cur, stored)
        return stored

    def _add_one(
        self, cur: sqlite3.Cursor, doc: NewDocument | str, collection: str, created: str
    ) -> StoredDocument:
        digest = doc if isinstance(doc, str) else doc.content_hash
        row = cur.execute(
            f"SELECT {DOC_COLUMNS} FROM documents WHERE collection = ? AND content_hash = ?",
            (collection, digest),
        ).fetchone()
        same = document_of(row) if row else None
        if isinstance(doc, str):
            if same is None:
                raise MissingDocumentError(doc)
            return StoredDocument(same, [], True)
        ext = doc.external_id
        if same is not None:
            if ext is None or same.external_id == ext:
                return StoredDocument(same, [], True)
            raise ContentConflictError(ext, same)
        replaced: NewDocument | None = None
        removed: list[int] = []
        if ext is not None:
            old = cur.execute(
                "SELECT id FROM documents WHERE collection = ? AND external_id = ?",
                (collection, ext),
            ).fetchone()
            if old is not None:
                replaced = self._snapshot(cur, str(old[0]))
                removed = _chunk_ids_of(cur, str(old[0]))
                cur.execute("DELETE FROM documents WHERE id = ?", (old[0],))
        chunk_ids = self._insert(cur, doc, created)
        row = cur.execute(f"SELECT {DOC_COLUMNS} FROM documents WHERE id = ?", (doc.id,))
        return StoredDocument(document_of(row.fetchone()), chunk_ids, False, replaced, removed)

    def _snapshot(self, cur: sqlite3.Cursor, document_id: str) -> NewDocument:
        """A stored document as a ``NewDocument`` (same id, text, chunks, embeddings)."""
        d = cur.execute(
            "SELECT id, collection, external_id, title, source, format, content_hash, text,"
            " metadata FROM documents WHERE id = ?",
            (document_id,),
        ).fetchone()
        chunks = cur.execute(
            "SELECT id, heading_path, page, embedding FROM chunks WHERE document_id = ?"
            " ORDER BY ordinal",
            (document_id,),
        ).fetchall()
        spans = self._sentences([int(c["id"]) for c in chunks])
        return NewDocument(
            id=d["id"],
            title=d["title"],
            source=d["source"],
            format=d["format"],
            content_hash=d["content_hash"],
            text=d["text"],
            chunks=[
                NewChunk(
                    tuple(json.loads(c["heading_path"])),
                    [(a, b) for _, a, b in spans.get(int(c["id"]), [])],
                    bytes(c["embedding"]),
                    c["page"],
                )
                for c in chunks
            ],
            metadata=json.loads(d["metadata"]),
            collection=d["collection"],
            external_id=d["external_id"],
        )

    def _insert(self, cur: sqlite3.Cursor, doc: NewDocument, created: str) -> list[int]:
        cur.execute(
            "INSERT INTO documents (id, collection, external_id, title, source, format,"
            " content_hash, text, metadata, created_at, chunk_count, char_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.id,
                doc.collection,
                doc.external_id,
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
                "INSERT INTO chunks (document_id, collection, ordinal, heading_path, start, end,"
                " page, text, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc.id,
                    doc.collection,
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

    def restore(self, documents: Sequence[NewDocument]) -> list[StoredDocument]:
        """Put back documents removed by a replacement (their ids and texts as they were),
        in one transaction: the undo of a replacement whose indexing failed."""
        created = now()
        out: list[StoredDocument] = []
        with self.transaction() as cur:
            for doc in documents:
                ids = self._insert(cur, doc, created)
                row = cur.execute(
                    f"SELECT {DOC_COLUMNS} FROM documents WHERE id = ?", (doc.id,)
                ).fetchone()
                out.append(StoredDocument(document_of(row), ids, False))
        return out

    def delete_documents(self, document_ids: Sequence[str]) -> list[int]:
        """Delete documents in one transaction (used to undo a failed ingest)."""
        removed: list[int] = []
        with self.transaction() as cur:
            for doc_id in document_ids:
                removed += _chunk_ids_of(cur, doc_id)
                cur.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return removed

    def delete_document(self, document_id: str) -> list[int] | None:
        """Delete a document and (by cascade) its chunks; returns the removed chunk ids, or
        None when there is no such document."""
        with self.transaction() as cur:
            if cur.execute("SELECT 1 FROM documents WHERE id = ?", (document_id,)).fetchone():
                ids = _chunk_ids_of(cur, document_id)
                cur.execute("DELETE FROM documents WHERE id = ?", (document_id,))
                return ids
        return None

    # ---- reads --------------------------------------------------------------------------
    def get_document(
        self, document_id: str, collection: str | None = None
    ) -> DocumentRecord | None:
        sql, args = scoped(
            f"SELECT {DOC_COLUMNS} FROM documents WHERE id = ?", [document_id], collection
        )
        with self._lock:
            row = self._conn.execute(sql, args).fetchone()
        return document_of(row) if row else None

    def find_by_hash(
        self, content_hash: str, collection: str = DEFAULT_COLLECTION
    ) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {DOC_COLUMNS} FROM documents WHERE collection = ? AND content_hash = ?",
                (collection, content_hash),
            ).fetchone()
        return document_of(row) if row else None

    def content_hashes(self, collection: str = DEFAULT_COLLECTION) -> set[str]:
        """Every stored document's content hash in ``collection`` (bulk loads skip those)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT content_hash FROM documents WHERE collection = ?", (collection,)
            ).fetchall()
        return {r[0] for r in rows}

    def find_by_external_id(self, external_id: str, collection: str) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {DOC_COLUMNS} FROM documents WHERE collection = ? AND external_id = ?",
                (collection, external_id),
            ).fetchone()
        return document_of(row) if row else None

    def get_text(self, document_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        return str(row[0]) if row else None

    def list_documents(
        self, limit: int = 100, offset: int = 0, collection: str | None = None
    ) -> list[DocumentRecord]:
        sql, args = scoped(f"SELECT {DOC_COLUMNS} FROM documents WHERE 1", [], collection)
        with self._lock:
            rows = self._conn.execute(
                sql + " ORDER BY rowid LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return [document_of(r) for r in rows]

    def count_documents(self, collection: str | None = None) -> int:
        sql, args = scoped("SELECT COUNT(*) FROM documents WHERE 1", [], collection)
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    def count_chunks(self, collection: str | None = None) -> int:
        sql, args = scoped("SELECT COUNT(*) FROM chunks WHERE 1", [], collection)
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    def get_chunks(
        self, chunk_ids: Sequence[int], collection: str | None = None
    ) -> list[ChunkRecord]:
        """Chunks in the order asked for; ids that no longer exist (or lie outside
        ``collection``) are skipped."""
        if not chunk_ids:
            return []
        ids = [int(i) for i in chunk_ids]
        rows: list[sqlite3.Row] = []
        with self._lock:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                marks = ",".join("?" * len(part))
                sql, args = scoped(
                    f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", part, collection
                )
                rows += self._conn.execute(sql, args).fetchall()
            sentences = self._sentences([int(r["id"]) for r in rows])
        by_id = {int(r["id"]): chunk_of(r, sentences.get(int(r["id"]), [])) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def chunks_of(
        self, document_id: str, limit: int | None = None, offset: int = 0
    ) -> list[ChunkRecord]:
        """The document's chunks in order; ``limit``/``offset``: one page of them."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE document_id = ? ORDER BY ordinal"
                " LIMIT ? OFFSET ?",
                (document_id, -1 if limit is None else limit, offset),
            ).fetchall()
            sentences = self._sentences([int(r["id"]) for r in rows])
        return [chunk_of(r, sentences.get(int(r["id"]), [])) for r in rows]

    def chunk_ids(self, collection: str | None = None) -> np.ndarray:
        sql, args = scoped("SELECT id FROM chunks WHERE 1", [], collection)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return np.array([int(r[0]) for r in rows], dtype=np.int64)

    def iter_embeddings(
        self, batch: int = 4096, collection: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids (n,), vectors (n, D) float32) in id order, for rebuilding the vector index."""
        last = -1
        while True:
            sql, args = scoped("SELECT id, embedding FROM chunks WHERE id > ?", [last], collection)
            with self._lock:
                rows = self._conn.execute(sql + " ORDER BY id LIMIT ?", [*args, batch]).fetchall()
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


def _chunk_ids_of(cur: sqlite3.Cursor, document_id: str) -> list[int]:
    return [
        int(r[0])
        for r in cur.execute("SELECT id FROM chunks WHERE document_id = ?", (document_id,))
    ]
