"""Plain records that cross package boundaries: documents, chunks, sentences, search hits."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SentenceRecord:
    """One sentence of a chunk; ``start:end`` are char offsets into the document text."""

    index: int  # position inside its chunk
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ChunkRecord:
    id: int
    document_id: str
    ordinal: int  # position of the chunk inside its document
    heading_path: tuple[str, ...]
    text: str
    start: int
    end: int
    sentences: list[SentenceRecord]
    page: int | None = None


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    title: str
    source: str  # filename, or "json" for a JSON upload
    format: str
    content_hash: str
    created_at: str
    chunk_count: int
    char_count: int
    metadata: dict[str, str] = field(default_factory=dict)
    collection: str = "default"
    external_id: str | None = None  # the caller's id: uploading it again replaces the document


@dataclass(frozen=True)
class NewChunk:
    """A chunk to store: text, sentence offsets and its embedding (normalised float32)."""

    heading_path: tuple[str, ...]
    sentences: list[tuple[int, int]]  # (start, end) offsets into the document text
    embedding: bytes
    page: int | None = None


@dataclass(frozen=True)
class NewDocument:
    id: str
    title: str
    source: str
    format: str
    content_hash: str
    text: str
    chunks: list[NewChunk]
    metadata: dict[str, str] = field(default_factory=dict)
    collection: str = "default"
    external_id: str | None = None


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    score: float
