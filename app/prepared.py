"""What a document becomes before it is embedded: its chunks and its content hash.

Preparing is pure (no model, no index), so it can run anywhere the chunking can be sent: in the
server when an upload is checked (the job then ingests what the check prepared), in ``sieve
ingest``, or in the Ray Data workers of ``sieve ingest --ray``, which then embed
:meth:`Prepared.texts` and hand both to :meth:`Collection.ingest_prepared`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.parsing import ChunkDraft, Chunking, ParsedDocument, ParseError

EMBED_GROUP_CHUNKS = 64  # chunks per embedding call at ingest (several short documents)


@dataclass(frozen=True)
class Prepared:
    parsed: ParsedDocument
    source: str
    content_hash: str
    drafts: list[ChunkDraft]
    chunking: Chunking  # how ``drafts`` were cut: a collection chunking otherwise cuts again
    external_id: str | None = None

    def texts(self) -> list[str]:
        """The text of each chunk, as the embedder sees it."""
        return [self.parsed.text[d.start : d.end] for d in self.drafts]


def prepare(
    parsed: ParsedDocument,
    source: str,
    chunking: Chunking,
    external_id: str | None = None,
) -> Prepared:
    """Chunk one parsed document; ``ParseError`` if it has no text, ``ExtractionLimitError``
    past ``chunking.max_chunks``."""
    drafts = chunking.chunks(parsed)
    if not drafts:
        raise ParseError(f"{source}: no text to index")
    digest = hashlib.sha256(parsed.text.encode("utf-8")).hexdigest()
    return Prepared(parsed, source, digest, drafts, chunking, external_id)


def embed_groups(prepared: Sequence[Prepared]) -> Iterator[list[Prepared]]:
    """Consecutive documents, grouped until a group holds EMBED_GROUP_CHUNKS chunks: one
    encode call per document pays its overhead (and pads nothing well) on short documents."""
    group: list[Prepared] = []
    chunks = 0
    for p in prepared:
        group.append(p)
        chunks += len(p.drafts)
        if chunks >= EMBED_GROUP_CHUNKS:
            yield group
            group, chunks = [], 0
    if group:
        yield group
