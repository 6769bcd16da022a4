"""Sections -> chunks of whole sentences, sized in words, for embedding and retrieval.

Sentences are packed greedily: a chunk closes once it holds ``target_words``, and a sentence that
would push it past ``max_words`` starts the next one. A sentence longer than ``max_words`` on its
own becomes a chunk by itself (it is never cut; the splitter already bounds it to 1000 chars).
A small remainder at the end of a section joins the chunk before it when that stays within
``max_words``. Chunks never cross sections, so each has one heading path and page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.parsing.limits import ExtractionLimitError
from app.parsing.sentences import iter_sentences
from app.parsing.types import ChunkDraft, ParsedDocument, Section, Span


@dataclass(frozen=True)
class Chunking:
    """How documents are cut into chunks (:func:`chunk_document`'s sizes and limit)."""

    target_words: int = 200
    max_words: int = 300
    max_chunks: int | None = None

    def chunks(self, doc: ParsedDocument) -> list[ChunkDraft]:
        return chunk_document(doc, self.target_words, self.max_words, self.max_chunks)


def chunk_document(
    doc: ParsedDocument,
    target_words: int = 200,
    max_words: int = 300,
    max_chunks: int | None = None,
) -> list[ChunkDraft]:
    """Chunks of every section in document order; sections without sentences yield none.

    ``max_chunks``: raise ``ExtractionLimitError`` as soon as the document passes it (the
    sentences are split lazily, so the work done is bounded by the limit, not the text)."""
    if target_words <= 0:
        raise ValueError(f"target_words must be > 0, got {target_words}")
    if max_words < target_words:
        raise ValueError(
            f"max_words must be >= target_words, got max_words={max_words}, "
            f"target_words={target_words}"
        )
    chunks: list[ChunkDraft] = []
    for section in doc.sections:
        for chunk in _chunk_section(doc.text, section, target_words, max_words):
            chunks.append(chunk)
            if max_chunks is not None and len(chunks) > max_chunks:
                raise ExtractionLimitError(
                    f"'{doc.title}' would become more than {max_chunks} chunks "
                    "(limit: SIEVE_MAX_DOCUMENT_CHUNKS); split it into smaller documents"
                )
    return chunks


def _chunk_section(
    text: str, section: Section, target_words: int, max_words: int
) -> Iterator[ChunkDraft]:
    """Chunks of one section, made as the sentences come (the last one may absorb a small
    remainder, so each chunk is yielded once the next one has started)."""
    held: tuple[list[Span], int] | None = None  # a finished chunk, yielded once the next starts
    current: list[Span] = []
    words = 0
    for span in iter_sentences(text, section.start, section.end):
        count = len(text[span.start : span.end].split())
        if current and words + count > max_words:
            if held is not None:
                yield ChunkDraft(section.heading_path, held[0], section.page)
            held, current, words = (current, words), [], 0
        current.append(span)
        words += count
        if words >= target_words:
            if held is not None:
                yield ChunkDraft(section.heading_path, held[0], section.page)
            held, current, words = (current, words), [], 0
    if current:
        if held is not None and words < target_words / 4 and held[1] + words <= max_words:
            current, held = held[0] + current, None
        if held is not None:
            yield ChunkDraft(section.heading_path, held[0], section.page)
        yield ChunkDraft(section.heading_path, current, section.page)
    elif held is not None:
        yield ChunkDraft(section.heading_path, held[0], section.page)
