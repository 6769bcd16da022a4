"""What a document becomes before it is embedded: its chunks and its content hash.

Preparing is pure (no model, no index), so it can run anywhere the chunking can be sent: in the
server when an upload is checked (the job then ingests what the check prepared), in ``sieve
ingest``, or in the Ray Data workers of ``sieve ingest --ray``, which then embed
:meth:`Prepared.texts` and hand both to :meth:`Collection.ingest_prepared`.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.parsing import ChunkDraft, Chunking, ParsedDocument, ParseError

EMBED_GROUP_CHUNKS = 64  # chunks per embedding call at ingest (several short documents)
_CHUNK_BYTES = 200  # a PreparedChunk and its array, besides 16 bytes per sentence


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    """One chunk of a prepared document, kept compact: its sentences' offsets in one flat
    array (start, end, start, end, …). Prepared documents wait in memory between an upload's
    check and its ingestion; a :class:`~app.parsing.Span` object per sentence would make a text
    of very short sentences cost 30 times its size."""

    heading_path: tuple[str, ...]
    offsets: array[int]
    page: int | None = None

    @classmethod
    def of(cls, draft: ChunkDraft) -> PreparedChunk:
        flat = array("q", (x for s in draft.sentences for x in (s.start, s.end)))
        return cls(draft.heading_path, flat, draft.page)

    @property
    def start(self) -> int:
        return self.offsets[0]

    @property
    def end(self) -> int:
        return self.offsets[-1]

    def sentences(self) -> list[tuple[int, int]]:
        """Each sentence's (start, end) offsets into the document text."""
        o = self.offsets
        return list(zip(o[::2], o[1::2], strict=True))


@dataclass(frozen=True)
class Prepared:
    parsed: ParsedDocument
    source: str
    content_hash: str
    chunks: list[PreparedChunk]
    chunking: Chunking  # how ``chunks`` were cut: a collection chunking otherwise cuts again
    external_id: str | None = None

    def texts(self) -> list[str]:
        """The text of each chunk, as the embedder sees it."""
        return [self.parsed.text[c.start : c.end] for c in self.chunks]

    def footprint(self) -> int:
        """About the bytes this holds in memory (its text and its chunks)."""
        sentences = sum(len(c.offsets) for c in self.chunks) // 2
        return sys.getsizeof(self.parsed.text) + _CHUNK_BYTES * len(self.chunks) + 16 * sentences


def prepare(
    parsed: ParsedDocument,
    source: str,
    chunking: Chunking,
    external_id: str | None = None,
) -> Prepared:
    """Chunk one parsed document; ``ParseError`` if it has no text, ``ExtractionLimitError``
    past ``chunking.max_chunks``."""
    chunks = [PreparedChunk.of(d) for d in chunking.chunks(parsed)]
    if not chunks:
        raise ParseError(f"{source}: no text to index")
    digest = hashlib.sha256(parsed.text.encode("utf-8")).hexdigest()
    return Prepared(parsed, source, digest, chunks, chunking, external_id)


def prepare_all(
    documents: Sequence[tuple[ParsedDocument, str]],
    chunking: Chunking,
    external_ids: Sequence[str | None] | None = None,
) -> list[Prepared]:
    """:func:`prepare` each (parsed document, source name), with its external id (or None)."""
    ext = list(external_ids) if external_ids is not None else [None] * len(documents)
    if len(ext) != len(documents):
        raise ValueError("one external id (or None) per document")
    return [
        prepare(parsed, source, chunking, e)
        for (parsed, source), e in zip(documents, ext, strict=True)
    ]


def embed_groups(prepared: Sequence[Prepared]) -> Iterator[list[Prepared]]:
    """Consecutive documents, grouped until a group holds EMBED_GROUP_CHUNKS chunks: one
    encode call per document pays its overhead (and pads nothing well) on short documents."""
    group: list[Prepared] = []
    chunks = 0
    for p in prepared:
        group.append(p)
        chunks += len(p.chunks)
        if chunks >= EMBED_GROUP_CHUNKS:
            yield group
            group, chunks = [], 0
    if group:
        yield group
