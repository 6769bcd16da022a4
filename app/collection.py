"""One collection: ingestion, deletion and search, keeping SQLite, FAISS, BM25 and the
knowledge graph in step.

SQLite is the source of truth and is written first, in one transaction per upload; the in-memory
FAISS index, the BM25 index and the knowledge graph follow. If one of those steps fails, the
documents just stored are deleted again (and taken out of all three), so an upload either fully
lands or leaves nothing. The derived files are written atomically, at most every
``index_save_interval_s`` and at close (rewriting them per upload would make bulk ingestion
quadratic); at open, and whenever another process (``sieve ingest``) has committed to the
database, all three are reconciled with the chunk ids in SQLite.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from app.collection_config import CollectionConfig, CollectionPaths
from app.parsing import ParsedDocument
from app.prepared import Prepared, embed_groups, prepare, prepare_all
from graph import GraphChunk, KnowledgeGraph, Triple
from index import (
    ChunkRecord,
    DocumentRecord,
    DocumentStore,
    Embedder,
    LexicalIndex,
    MissingDocumentError,
    NewChunk,
    NewDocument,
    SearchHit,
    StoredDocument,
    VectorIndex,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
GraphHook = Callable[["Collection", list[int]], None]


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
    replaced: str | None = None  # id of the document with the same external id it replaced


# called inside the SQLite transaction that stores an ingest's documents (a job marks itself done)
OnCommit = Callable[[sqlite3.Cursor, list[IngestResult]], None]


class Collection:
    """Everything of one collection: its view of the shared SQLite store, its FAISS index, BM25
    index and knowledge graph, kept in step; built from its :class:`CollectionConfig`."""

    def __init__(
        self,
        store: DocumentStore,
        index: VectorIndex,
        embedder: Embedder,
        config: CollectionConfig,
        lexical: LexicalIndex | None = None,
        graph: KnowledgeGraph | None = None,
        owns_store: bool = True,
        on_graph_added: GraphHook | None = None,
    ) -> None:
        """``on_graph_added(collection, chunk_ids)``: called with the chunks each write (or a
        reconciliation) adds to the graph, e.g. to queue them for LLM triple extraction."""
        self.config = config
        self.name = config.name
        self.paths: CollectionPaths = config.paths
        self._owns_store = owns_store  # False: the store is shared by all collections
        self.store = store
        self.index = index
        self.embedder = embedder
        self.lexical = lexical or LexicalIndex()
        self.graph = graph or _new_graph(config, embedder)
        self._on_graph_added = on_graph_added
        self._write_lock = threading.RLock()  # sync() takes it too, inside writes
        self._seen_version = -1
        self._dirty = False  # index changed since it was last written to disk
        self._saved_at = time.monotonic()

    @classmethod
    def open(
        cls,
        config: CollectionConfig,
        embedder: Embedder,
        store: DocumentStore | None = None,
        on_graph_added: GraphHook | None = None,
    ) -> Collection:
        """Open one collection of the data dir: load its FAISS file and reconcile it with
        SQLite (add what it lacks, drop what SQLite no longer has); rebuild it when it is
        unusable. ``store``: the data dir's store, shared (else one is opened and owned)."""
        config.db_path.parent.mkdir(parents=True, exist_ok=True)
        owns = store is None
        store = store or DocumentStore(config.db_path)
        _check_embedder(store, embedder)
        paths = config.paths
        options = config.index_options()
        index: VectorIndex | None = None
        if paths.index.exists():
            try:
                index = VectorIndex.load(paths.index, **options)
            except (RuntimeError, ValueError) as exc:
                logger.warning("cannot use %s (%s); rebuilding it", paths.index, exc)
            if index is not None and index.dim != embedder.dim:
                logger.warning(
                    "%s has dim %d, embedder %d: rebuilding",
                    paths.index,
                    index.dim,
                    embedder.dim,
                )
                index = None
        collection = cls(
            store,
            index or VectorIndex(embedder.dim, **options),  # type: ignore[arg-type]
            embedder,
            config,
            _load_or_none(paths.lexical, LexicalIndex.load),
            _load_or_none(
                paths.graph,
                lambda p: KnowledgeGraph.load(p, embedder.encode, **config.graph_options()),
            ),
            owns_store=owns,
            on_graph_added=on_graph_added,
        )
        if index is None:
            collection.rebuild_index()
        else:
            collection.sync(force=True)
        collection._retrain_if_outgrown()
        collection.save_index()
        return collection

    def close(self) -> None:
        self.save_index()
        if self._owns_store:
            self.store.close()

    # ---- ingestion ------------------------------------------------------------------------
    def ingest(
        self,
        documents: Sequence[tuple[ParsedDocument, str]],
        external_ids: Sequence[str | None] | None = None,
        on_commit: OnCommit | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IngestResult]:
        """Index parsed documents (with their source names) all-or-nothing. A document with
        an external id replaces the one stored under that id (atomically: the old one stays
        until the new one is fully indexed, and comes back if indexing fails).
        ``on_commit(cursor, results)`` runs inside the SQLite transaction that stores them;
        ``progress(embedded, total)`` after each group of documents is embedded (documents are
        embedded together until they hold EMBED_GROUP_CHUNKS chunks)."""
        prepared = prepare_all(documents, self.config.chunking, external_ids)
        return self.ingest_prepared(prepared, on_commit=on_commit, progress=progress)

    def stored_hashes(self, prepared: Sequence[Prepared]) -> set[str]:
        """The content hashes of ``prepared`` this collection already holds (as the same
        external id, when one is given): ingesting those again changes nothing."""
        return {
            p.content_hash
            for p in prepared
            if (found := self.store.find_by_hash(p.content_hash, self.name))
            and (p.external_id is None or found.external_id == p.external_id)
        }

    def ingest_prepared(
        self,
        prepared: Sequence[Prepared],
        vectors: Sequence[np.ndarray] | None = None,
        on_commit: OnCommit | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IngestResult]:
        """:meth:`ingest` of documents already chunked (:func:`app.prepared.prepare`);
        ``vectors``: each document's chunk vectors when they were embedded elsewhere (by this
        embedder's model: ``sieve ingest --ray``'s workers), else they are embedded here. A
        document chunked otherwise than this collection chunks is cut again (refused, with
        ``vectors``: they belong to the other chunks)."""
        chunking = self.config.chunking
        if any(p.chunking != chunking for p in prepared):
            if vectors is not None:
                raise ValueError(f"documents chunked otherwise than {self.name!r} chunks")
            prepared = [
                prepare(p.parsed, p.source, chunking, p.external_id)
                if p.chunking != chunking
                else p
                for p in prepared
            ]
        given: dict[str, np.ndarray] = {}
        if vectors is not None:
            _check_vectors(prepared, vectors, self.embedder.dim)
            given = {p.content_hash: v for p, v in zip(prepared, vectors, strict=True)}
        known = self.stored_hashes(prepared)
        fresh: list[Prepared] = []  # the same content twice in one call: the first is stored
        for p in prepared:
            if p.content_hash not in known:
                known.add(p.content_hash)
                fresh.append(p)
        new_docs: dict[str, NewDocument] = {}
        done = 0
        for group in embed_groups(fresh):  # small documents share embedding calls
            if all(p.content_hash in given for p in group):
                embedded = [given[p.content_hash] for p in group]
            else:
                embedded = self._embed(group)
            for p, vecs in zip(group, embedded, strict=True):
                new_docs[p.content_hash] = self._new_document(p, vecs)
            done += len(group)
            if progress is not None:
                progress(done, len(fresh))
        hook = None
        if on_commit is not None:
            callback = on_commit

            def hook(cur: sqlite3.Cursor, stored: list[StoredDocument]) -> None:
                callback(cur, [_result(s) for s in stored])

        for _ in range(3):
            with self._write_lock:
                self.sync()
                try:
                    stored = self.store.add_documents(
                        [new_docs.get(p.content_hash) or p.content_hash for p in prepared],
                        self.name,
                        hook,
                    )
                except MissingDocumentError as exc:  # its original was deleted meanwhile
                    gone = [p for p in prepared if p.content_hash == exc.content_hash]
                    new_docs[exc.content_hash] = self._new_document(gone[0], self._embed(gone)[0])
                    continue
                self._index_added(stored, new_docs)
            return [_result(s) for s in stored]
        raise RuntimeError("documents kept disappearing while being ingested; try again")

    def _index_added(self, stored: list[StoredDocument], new_docs: dict[str, NewDocument]) -> None:
        """Add the vectors of just-stored documents; on failure remove those documents again."""
        added = [s for s in stored if not s.duplicate]
        replaced = [s.replaced for s in added if s.replaced is not None]
        try:
            gone = [i for s in added for i in s.removed_chunk_ids]
            if gone:
                self._remove_everywhere(gone)
            for s in added:
                doc = new_docs[s.record.content_hash]
                vecs = np.stack([np.frombuffer(c.embedding, np.float32) for c in doc.chunks])
                self.index.add(np.array(s.chunk_ids, dtype=np.int64), vecs)
                self._dirty = True
            self._add_derived([_graph_chunks(s, new_docs[s.record.content_hash]) for s in added])
            if added:
                self._retrain_if_outgrown()
                self._maybe_save()
        except BaseException:
            logger.exception("indexing failed; removing the documents just stored")
            removed = self.store.delete_documents([s.record.id for s in added])
            self._remove_everywhere(removed)
            if replaced:  # put the replaced documents back, in SQLite and in the indexes
                self.store.restore(replaced)
                self.sync(force=True)
            raise

    def _add_derived(self, per_document: Sequence[list[GraphChunk]]) -> None:
        """Add chunks to the BM25 index and the knowledge graph."""
        chunks = [c for doc in per_document for c in doc]
        if not chunks:
            return
        self.lexical.add([c.chunk_id for c in chunks], [" ".join(c.sentences) for c in chunks])
        if self.config.graph:
            self.graph.add(chunks)
            self._notify([c.chunk_id for c in chunks])
        self._dirty = True

    def _notify(self, chunk_ids: list[int]) -> None:
        if self._on_graph_added is not None and chunk_ids:
            self._on_graph_added(self, chunk_ids)

    def add_triples(self, chunk_id: int, triples: Sequence[Triple]) -> bool:
        """Re-add a stored chunk to the graph with typed relations; False when the chunk is
        gone (deleted after its triples were asked for)."""
        with self._write_lock:
            found = self.store.get_chunks([chunk_id], self.name)
            if not found or not self.config.graph:
                return False
            record = self.store.get_document(found[0].document_id)
            chunk = _graph_chunk(found[0], record.title if record else "")
            self.graph.add([chunk], {chunk_id: list(triples)})
            self._dirty = True
        return True

    def _remove_everywhere(self, chunk_ids: Sequence[int]) -> None:
        self.index.remove(np.array(chunk_ids, dtype=np.int64))
        self.lexical.remove(chunk_ids)
        self.graph.remove(chunk_ids)
        self._dirty = True

    def _embed(self, prepared: Sequence[Prepared]) -> list[np.ndarray]:
        texts = [t for p in prepared for t in p.texts()]
        matrix = self.embedder.encode(texts)
        out, pos = [], 0
        for p in prepared:
            out.append(matrix[pos : pos + len(p.chunks)])
            pos += len(p.chunks)
        return out

    def _new_document(self, p: Prepared, vectors: np.ndarray) -> NewDocument:
        chunks = [
            NewChunk(
                heading_path=c.heading_path,
                sentences=c.sentences(),
                embedding=np.ascontiguousarray(vec, dtype=np.float32).tobytes(),
                page=c.page,
            )
            for c, vec in zip(p.chunks, vectors, strict=True)
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
            collection=self.name,
            external_id=p.external_id,
        )

    # ---- deletion -------------------------------------------------------------------------
    def delete(self, document_id: str) -> DocumentRecord:
        return self.delete_many([document_id])[0]

    def delete_many(self, document_ids: Sequence[str]) -> list[DocumentRecord]:
        """Delete several documents in one transaction and one pass over the indexes; all must
        exist (``DocumentNotFoundError`` names the first that does not, and nothing is deleted)."""
        with self._write_lock:
            self.sync()
            records = []
            for document_id in dict.fromkeys(document_ids):
                record = self.store.get_document(document_id, self.name)
                if record is None:
                    raise DocumentNotFoundError(document_id)
                records.append(record)
            removed = self.store.delete_documents([r.id for r in records])
            self._remove_everywhere(removed)
            self._maybe_save()
        return records

    # ---- reads ----------------------------------------------------------------------------
    def get(self, document_id: str) -> DocumentRecord:
        record = self.store.get_document(document_id, self.name)
        if record is None:
            raise DocumentNotFoundError(document_id)
        return record

    def search(self, query: np.ndarray, k: int) -> list[tuple[ChunkRecord, float]]:
        """Top-k chunks for one unit query vector, best first."""
        self.sync()
        hits: list[SearchHit] = self.index.search(query, k)[0]
        found = self.store.get_chunks([h.chunk_id for h in hits], self.name)
        chunks = {c.id: c for c in found}
        return [(chunks[h.chunk_id], h.score) for h in hits if h.chunk_id in chunks]

    def search_lexical(self, question: str, k: int) -> list[tuple[ChunkRecord, float]]:
        """Top-k chunks by BM25, best first."""
        self.sync()
        hits = self.lexical.search(question, k)
        found = self.store.get_chunks([h.chunk_id for h in hits], self.name)
        chunks = {c.id: c for c in found}
        return [(chunks[h.chunk_id], h.score) for h in hits if h.chunk_id in chunks]

    def chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]:
        """Stored chunks in the order asked (ids no longer stored are skipped)."""
        found = {c.id: c for c in self.store.get_chunks(list(chunk_ids), self.name)}
        return [found[i] for i in chunk_ids if i in found]

    # ---- consistency and persistence ------------------------------------------------------
    def sync(self, force: bool = False) -> None:
        """Reconcile the index with SQLite when another process (``sieve ingest``) committed
        since we last looked; ``PRAGMA data_version`` makes the no-change case one query."""
        if not force and self.store.data_version() == self._seen_version:
            return
        with self._write_lock:
            version = self.store.data_version()  # read first: a later commit shows up next time
            if not force and version == self._seen_version:
                return
            stored, indexed = self.store.chunk_ids(self.name), self.index.ids()
            missing = np.setdiff1d(stored, indexed)
            stale = np.setdiff1d(indexed, stored)
            if len(stale):
                self.index.remove(stale)
            ids, vectors = self.store.embeddings_for(missing.tolist())
            if len(ids):
                self.index.add(ids, vectors)
            if len(missing) or len(stale):
                self._dirty = True
                logger.info("index reconciled with SQLite: +%d -%d", len(missing), len(stale))
            self._sync_derived(stored)
            self._seen_version = version

    def _sync_derived(self, stored: np.ndarray) -> None:
        """Bring BM25 and the graph to the chunk ids in SQLite (the graph only when enabled)."""
        targets: list[tuple[str, np.ndarray]] = [("lexical", self.lexical.ids())]
        if self.config.graph:
            targets.append(("graph", self.graph.chunk_ids()))
        for name, have in targets:
            missing = np.setdiff1d(stored, have).tolist()
            stale = np.setdiff1d(have, stored).tolist()
            if not missing and not stale:
                continue
            target = self.lexical if name == "lexical" else self.graph
            target.remove(stale)
            for start in range(0, len(missing), 500):
                records = self.store.get_chunks(missing[start : start + 500], self.name)
                titles = {
                    d: (r.title if (r := self.store.get_document(d)) else "")
                    for d in {c.document_id for c in records}
                }
                chunks = [_graph_chunk(c, titles[c.document_id]) for c in records]
                if name == "lexical":
                    self.lexical.add(
                        [c.chunk_id for c in chunks], [" ".join(c.sentences) for c in chunks]
                    )
                else:
                    self.graph.add(chunks)
                    self._notify([c.chunk_id for c in chunks])
            self._dirty = True
            logger.info("%s reconciled with SQLite: +%d -%d", name, len(missing), len(stale))

    def rebuild_index(self) -> None:
        """Rebuild FAISS from the embeddings stored in SQLite (and retrain an IVF index)."""
        with self._write_lock:
            id_parts, vec_parts = [], []
            for ids, vectors in self.store.iter_embeddings(collection=self.name):
                id_parts.append(ids)
                vec_parts.append(vectors)
            dim = self.index.dim
            ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
            vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, dim), np.float32)
            self.index.rebuild(ids, vectors)
            self._dirty = True
            self._seen_version = self.store.data_version()
        logger.info("FAISS index rebuilt from SQLite: %d vectors", len(ids))

    def save_index(self) -> None:
        """Write the index file atomically if it changed. SQLite stays the source of truth:
        a file older than the db is reconciled at the next open, never trusted blindly."""
        with self._write_lock:
            if self._dirty or not self.paths.index.exists():
                self.paths.index.parent.mkdir(parents=True, exist_ok=True)
                self.index.save(self.paths.index)
                self.lexical.save(self.paths.lexical)
                if self.config.graph:
                    self.graph.save(self.paths.graph)
                self._dirty = False
                self._saved_at = time.monotonic()

    def _maybe_save(self) -> None:
        if time.monotonic() - self._saved_at >= self.config.save_interval_s:
            self.save_index()

    def _retrain_if_outgrown(self) -> None:
        if self.index.outgrown():
            logger.info("IVF index outgrew its %d lists: retraining", self.index.nlist)
            self.rebuild_index()


def _result(s: StoredDocument) -> IngestResult:
    return IngestResult(s.record, s.duplicate, s.replaced.id if s.replaced else None)


def _new_graph(config: CollectionConfig, embedder: Embedder) -> KnowledgeGraph:
    return KnowledgeGraph(embedder.encode, **config.graph_options())


def _load_or_none(path: Path, load: Callable[[Path], T]) -> T | None:
    """A derived file, or None (to be rebuilt from SQLite) when absent or unusable."""
    if not path.exists():
        return None
    try:
        return load(path)
    except ValueError as exc:
        logger.warning("cannot use %s (%s); rebuilding it from SQLite", path, exc)
        return None


def _graph_chunk(c: ChunkRecord, title: str) -> GraphChunk:
    sentences = tuple(s.text for s in c.sentences)
    return GraphChunk(c.id, c.document_id, title, c.heading_path, sentences)


def _graph_chunks(s: StoredDocument, doc: NewDocument) -> list[GraphChunk]:
    return [
        GraphChunk(
            cid,
            s.record.id,
            doc.title,
            chunk.heading_path,
            tuple(doc.text[a:b] for a, b in chunk.sentences),
        )
        for cid, chunk in zip(s.chunk_ids, doc.chunks, strict=True)
    ]


def _check_embedder(store: DocumentStore, embedder: Embedder) -> None:
    name = str(embedder.model_path or "bundled:all-MiniLM-L6-v2")
    signature = f"{name}|dim={embedder.dim}"
    stored = store.get_meta("embedder")
    if stored is None or (stored != signature and store.count_chunks() == 0):
        store.set_meta("embedder", signature)
    elif stored != signature:
        raise EmbedderMismatchError(
            f"the data dir was indexed with {stored!r}, but the embedder is {signature!r}; "
            "use the same model or a new data dir"
        )
    # fp32 and bf16 vectors agree to a cosine of ~0.9999 (bench/results/precision.json), int8's
    # to ~0.93: a data dir embedded in one and searched in another works, but may drift
    precision = store.get_meta("embedder_precision")
    if precision is None or store.count_chunks() == 0:
        store.set_meta("embedder_precision", embedder.precision)
    elif precision != embedder.precision and "int8" in (precision, embedder.precision):
        logger.warning(
            "the data dir's vectors were embedded in %s, the embedder now runs in %s: search "
            "may drift; re-ingest, or set SIEVE_PRECISION=%s",
            precision,
            embedder.precision,
            precision,
        )


def _check_vectors(prepared: Sequence[Prepared], vectors: Sequence[np.ndarray], dim: int) -> None:
    """Vectors embedded elsewhere must be one (chunks x dim) matrix per document."""
    if len(vectors) != len(prepared):
        raise ValueError(f"{len(vectors)} vector matrices for {len(prepared)} documents")
    for p, v in zip(prepared, vectors, strict=True):
        if v.shape != (len(p.chunks), dim):
            raise ValueError(
                f"{p.source}: vectors of shape {v.shape}, expected ({len(p.chunks)}, {dim})"
            )
