"""Sections -> chunks of whole sentences, sized in words, for embedding and retrieval.

Sentences are packed greedily: a chunk closes once it holds ``target_words``, and a sentence that
would push it past ``max_words`` starts the next one. A sentence longer than ``max_words`` on its
own becomes a chunk by itself (it is never cut; the splitter already bounds it to 1000 chars).
A small remainder at the end of a section joins the chunk before it when that stays within
``max_words``. Chunks never cross sections, so each has one heading path and page.
"""

from __future__ import annotations

from app.parsing.sentences import split_sentences
from app.parsing.types import ChunkDraft, ParsedDocument, Section, Span


def chunk_document(
    doc: ParsedDocument, target_words: int = 200, max_words: int = 300
) -> list[ChunkDraft]:
    """Chunks of every section in document order; sections without sentences yield none."""
    if target_words <= 0:
        raise ValueError(f"target_words must be > 0, got {target_words}")
    if max_words < target_words:
        raise ValueError(
            f"max_words must be >= target_words, got max_words={max_words}, "
            f"target_words={target_words}"
        )
    chunks: list[ChunkDraft] = []
    for section in doc.sections:
        chunks.extend(_chunk_section(doc.text, section, target_words, max_words))
    return chunks


def _chunk_section(
    text: str, section: Section, target_words: int, max_words: int
) -> list[ChunkDraft]:
    groups: list[tuple[list[Span], int]] = []  # (sentences, words) per chunk
    current: list[Span] = []
    words = 0
    for span in split_sentences(text, section.start, section.end):
        count = len(text[span.start : span.end].split())
        if current and words + count > max_words:
            groups.append((current, words))
            current, words = [], 0
        current.append(span)
        words += count
        if words >= target_words:
            groups.append((current, words))
            current, words = [], 0
    if current:
        if groups and words < target_words / 4 and groups[-1][1] + words <= max_words:
            last, last_words = groups.pop()
            current, words = last + current, last_words + words
        groups.append((current, words))
    return [ChunkDraft(section.heading_path, spans, section.page) for spans, _ in groups]
