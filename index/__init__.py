"""Embeddings, the FAISS vector index, the BM25 lexical index and the SQLite document store."""

from index.embedder import (
    MINILM_SHA256,
    CachedEncoder,
    Embedder,
    ModelIntegrityError,
    bundled_model_path,
)
from index.lexical import LexicalIndex, tokenize
from index.records import (
    ChunkRecord,
    DocumentRecord,
    NewChunk,
    NewDocument,
    SearchHit,
    SentenceRecord,
)
from index.store import DocumentStore, MissingDocumentError, StoredDocument
from index.vector_index import IndexKind, VectorIndex, faiss_has_gpu

__all__ = [
    "MINILM_SHA256",
    "CachedEncoder",
    "ChunkRecord",
    "DocumentRecord",
    "DocumentStore",
    "Embedder",
    "IndexKind",
    "LexicalIndex",
    "MissingDocumentError",
    "ModelIntegrityError",
    "NewChunk",
    "NewDocument",
    "SearchHit",
    "SentenceRecord",
    "StoredDocument",
    "VectorIndex",
    "bundled_model_path",
    "faiss_has_gpu",
    "tokenize",
]
