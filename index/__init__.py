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
from index.store import (
    DEFAULT_COLLECTION,
    CollectionInfo,
    ContentConflictError,
    DocumentStore,
    MissingDocumentError,
    StoredDocument,
    UnknownCollectionError,
)
from index.vector_index import IndexKind, VectorIndex, faiss_has_gpu

__all__ = [
    "DEFAULT_COLLECTION",
    "MINILM_SHA256",
    "CachedEncoder",
    "ChunkRecord",
    "CollectionInfo",
    "ContentConflictError",
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
    "UnknownCollectionError",
    "VectorIndex",
    "bundled_model_path",
    "faiss_has_gpu",
    "tokenize",
]
