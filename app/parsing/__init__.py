"""Uploaded files -> plain text with sections -> sentences -> chunks (all offsets into the text)."""

from app.parsing.chunking import Chunking, chunk_document
from app.parsing.detect import detect_format
from app.parsing.formats import parse_document, parse_text
from app.parsing.limits import DEFAULT_LIMITS, ExtractionLimitError, ExtractionLimits
from app.parsing.sentences import MAX_SENTENCE_CHARS, iter_sentences, split_sentences
from app.parsing.types import (
    ChunkDraft,
    ParsedDocument,
    ParseError,
    Section,
    Span,
    UnsupportedFormatError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_SENTENCE_CHARS",
    "ChunkDraft",
    "Chunking",
    "ExtractionLimitError",
    "ExtractionLimits",
    "ParseError",
    "ParsedDocument",
    "Section",
    "Span",
    "UnsupportedFormatError",
    "chunk_document",
    "detect_format",
    "iter_sentences",
    "parse_document",
    "parse_text",
    "split_sentences",
]
