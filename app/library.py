"""The document library: ingestion, deletion and vector search, keeping SQLite and FAISS in step.

SQLite is written first, in one transaction per upload; FAISS follows and is saved atomically.
If the FAISS step fails, the documents just stored are deleted again, so an upload either fully
lands or leaves nothing. At open, and whenever another process (``sieve ingest``) has committed
to the database, the in-memory index is reconciled with the chunk ids in SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.parsing import ChunkDraft, ParsedDocument, ParseError, chunk_document
from app.settings import Settings
from index import (
    ChunkRecord,
    DocumentRecord,
    DocumentStore,
    Embedder,
    NewChunk,
    NewDocument,
    SearchHit,
    VectorIndex,
)

logger = logging.getLogger(__name__)


class DocumentNotFoundError(LookupError):
    def __init__(self, document_id: str) -> None:
        super().__init__(f"no document with id {document_id!r}")
        self.document_id = document_id


class EmbedderMismatchError(RuntimeError):
    """The stored vectors were made by another embedding model than the configured one."""


@dataclass(frozen=True)
class IngestResult:
    document: DocumentRecord
    duplicate: bool  # True: same content was already stored; nothing was indexed


@dataclass(frozen=True)
class _Prepared:
    parsed: ParsedDocument
    source: str
    content_hash: str
    drafts: list[ChunkDraft]


class Library:
    def __init__(
        self, store: DocumentStore, index: VectorIndex, embedder: Embedder, settings: Settings
    ) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._write_lock = threading.RLock()  # sync() takes it too, inside writes
        self._seen_version = -1

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder) -> Library:
        """Open the data dir: load the FAISS file, or rebuild it from SQLite when it disagrees."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = DocumentStore(settings.db_path)
        _check_embedder(store, embedder)
        options = {
            "kind": settings.index_kind,
            "hnsw_m": settings.hnsw_m,
            "ivf_nlist": settings.ivf_nlist,
            "ivf_nprobe": settings.ivf_nprobe,
            "use_gpu": settings.faiss_gpu,
        }
        index: VectorIndex | None = None
        if settings.index_path.exists():
            try:
                index = VectorIndex.load(settings.index_path, **options)
            except (RuntimeError, ValueError) as exc:
                logger.warning("cannot use %s (%s); rebuilding it", settings.index_path, exc)
        if index is None:
            index = VectorIndex(embedder.dim, **options)  # type: ignore[arg-type]
        library = cls(store, index, embedder, settings)
        version = store.data_version()  # our own commits never change it; others' do
        if not index.matches(store.chunk_ids()):
            library.rebuild_index()
        library._seen_version = version
        return library

    def close(self) -> None:
        self.store.close()

    # ---- ingestion ------------------------------------------------------------------------
    def ingest(self, documents: Sequence[tuple[ParsedDocument, str]]) -> list[IngestResult]:
        """Index parsed documents (with their source names) all-or-nothing."""
        prepared = [self._prepare(parsed, source) for parsed, source in documents]
        fresh = [p for p in prepared if self.store.find_by_hash(p.content_hash) is None]
        vectors = self._embed(fresh)
        by_hash = {
            p.content_hash: self._new_document(p, vecs)
            for p, vecs in zip(fresh, vectors, strict=True)
        }
        with self._write_lock:
            self.sync()
            gone = [
                p
                for p in prepared
                if p.content_hash not in by_hash and self.store.find_by_hash(p.content_hash) is None
            ]  # duplicates whose original was deleted since we looked: index them after all
            for p, vecs in zip(gone, self._embed(gone), strict=True):
                by_hash[p.content_hash] = self._new_document(p, vecs)
            stored = self.store.add_documents(
                [by_hash.get(p.content_hash) or _placeholder(p) for p in prepared]
            )
            added = [s for s in stored if not s.duplicate]
            try:
                for s in added:
                    doc = by_hash[s.record.content_hash]
                    vecs = np.stack([np.frombuffer(c.embedding, np.float32) for c in doc.chunks])
                    self.index.add(np.array(s.chunk_ids, dtype=np.int64), vecs)
                if added:
                    self.index.save(self.settings.index_path)
            except BaseException:
                logger.exception("indexing failed; removing the documents just stored")
                removed = self.store.delete_documents([s.record.id for s in added])
                self.index.remove(np.array(removed, dtype=np.int64))
                raise
        return [IngestResult(s.record, s.duplicate) for s in stored]

    def _prepare(self, parsed: ParsedDocument, source: str) -> _Prepared:
        drafts = chunk_document(
            parsed, self.settings.chunk_target_words, self.settings.chunk_max_words
        )
        if not drafts:
            raise ParseError(f"{source}: no text to index")
        digest = hashlib.sha256(parsed.text.encode("utf-8")).hexdigest()
        return _Prepared(parsed, source, digest, drafts)

    def _embed(self, prepared: Sequence[_Prepared]) -> list[np.ndarray]:
        texts = [p.parsed.text[d.start : d.end] for p in prepared for d in p.drafts]
        matrix = self.embedder.encode(texts)
        out, pos = [], 0
        for p in prepared:
            out.append(matrix[pos : pos + len(p.drafts)])
            pos += len(p.drafts)
        return out

    @staticmethod
    def _new_document(p: _Prepared, vectors: np.ndarray) -> NewDocument:
        chunks = [
            NewChunk(
                heading_path=d.heading_path,
                sentences=[(s.start, s.end) for s in d.sentences],
                embedding=np.ascontiguousarray(vec, dtype=np.float32).tobytes(),
                page=d.page,
            )
            for d, vec in zip(p.drafts, vectors, strict=True)
        ]
        return NewDocument(
            id=uuid.uuid4().hex,
            title=p.parsed.title,
            source=p.source,
            format=p.parsed.format,
            content_hash=p.content_hash,
            text=p.parsed.text,
            chunks=chunks,
            metadata=dict(p.parsed.metadata),
        )

    # ---- deletion -------------------------------------------------------------------------
    def delete(self, document_id: str) -> DocumentRecord:
        with self._write_lock:
            self.sync()
            record = self.store.get_document(document_id)
            removed = self.store.delete_document(document_id)
            if record is None or removed is None:
                raise DocumentNotFoundError(document_id)
            self.index.remove(np.array(removed, dtype=np.int64))
            self.index.save(self.settings.index_path)
        return record

    # ---- reads ----------------------------------------------------------------------------
    def get(self, document_id: str) -> DocumentRecord:
        record = self.store.get_document(document_id)
        if record is None:
            raise DocumentNotFoundError(document_id)
        return record

    def search(self, query: np.ndarray, k: int) -> list[tuple[ChunkRecord, float]]:
        """Top-k chunks for one unit query vector, best first."""
        self.sync()
        hits: list[SearchHit] = self.index.search(query, k)[0]
        chunks = {c.id: c for c in self.store.get_chunks([h.chunk_id for h in hits])}
        return [(chunks[h.chunk_id], h.score) for h in hits if h.chunk_id in chunks]

    # ---- consistency ----------------------------------------------------------------------
    def sync(self) -> None:
        """Pick up commits made by another process since we last looked (cheap when none)."""
        if self.store.data_version() == self._seen_version:
            return
        with self._write_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        version = self.store.data_version()
        if version == self._seen_version:
            return
        stored, indexed = self.store.chunk_ids(), self.index.ids()
        missing = np.setdiff1d(stored, indexed)
        stale = np.setdiff1d(indexed, stored)
        if len(stale):
            self.index.remove(stale)
        if len(missing):
            ids, vectors = self.store.embeddings_for(missing.tolist())
            self.index.add(ids, vectors)
        if len(missing) or len(stale):
            logger.info("index synced: +%d -%d chunks", len(missing), len(stale))
        self._seen_version = version

    def rebuild_index(self) -> None:
        """Rebuild FAISS from the embeddings stored in SQLite and save it."""
        id_parts, vec_parts = [], []
        for ids, vectors in self.store.iter_embeddings():
            id_parts.append(ids)
            vec_parts.append(vectors)
        dim = self.index.dim
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
        vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, dim), np.float32)
        self.index.rebuild(ids, vectors)
        self.index.save(self.settings.index_path)
        logger.info("FAISS index rebuilt from SQLite: %d vectors", len(ids))


def _placeholder(p: _Prepared) -> NewDocument:
    """A document known to be a duplicate: only its hash matters to ``add_documents``."""
    return NewDocument(
        id="",
        title=p.parsed.title,
        source=p.source,
        format=p.parsed.format,
        content_hash=p.content_hash,
        text="",
        chunks=[NewChunk((), [(0, 0)], b"")],
    )


def _check_embedder(store: DocumentStore, embedder: Embedder) -> None:
    name = str(embedder.model_path or "bundled:all-MiniLM-L6-v2")
    signature = f"{name}|dim={embedder.dim}"
    stored = store.get_meta("embedder")
    if stored is None:
        store.set_meta("embedder", signature)
    elif stored != signature and store.count_chunks() > 0:
        raise EmbedderMismatchError(
            f"the data dir was indexed with {stored!r}, but the embedder is {signature!r}; "
            "use the same model or a new data dir"
        )
