"""Caps on the work one document may cause, enforced while it is extracted (not after).

Bytes on the wire say little about cost: a 12 KB PDF whose pages share one compressed content
stream expands to hundreds of millions of characters, a 96 KB docx to a million paragraphs. So
every parser counts what it produces and stops at the first limit it passes, with an
:class:`ExtractionLimitError` that names the limit and the setting that raises it (→ 413).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.parsing.types import ParseError


class ExtractionLimitError(ParseError):
    """A document (or an upload) asks for more work than the configured limits allow."""


@dataclass(frozen=True)
class ExtractionLimits:
    """Per-document limits; the defaults match ``Settings``."""

    max_chars: int = 5_000_000
    max_pages: int = 2000
    max_paragraphs: int = 200_000  # docx paragraphs, or lines of a text format
    max_chunks: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_pages", "max_paragraphs", "max_chunks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def check_chars(self, count: int, name: str) -> None:
        if count > self.max_chars:
            raise ExtractionLimitError(
                f"'{name}' has more than {self.max_chars} characters of text "
                f"(limit: SIEVE_MAX_DOCUMENT_CHARS); split it into smaller documents"
            )

    def check_pages(self, count: int, name: str) -> None:
        if count > self.max_pages:
            raise ExtractionLimitError(
                f"'{name}' has {count} pages, over the limit of {self.max_pages} "
                f"(SIEVE_MAX_DOCUMENT_PAGES)"
            )

    def check_paragraphs(self, count: int, name: str, what: str = "paragraphs") -> None:
        if count > self.max_paragraphs:
            raise ExtractionLimitError(
                f"'{name}' has more than {self.max_paragraphs} {what} "
                f"(limit: SIEVE_MAX_DOCUMENT_PARAGRAPHS)"
            )

    def check_chunks(self, count: int, name: str) -> None:
        if count > self.max_chunks:
            raise ExtractionLimitError(
                f"'{name}' would become more than {self.max_chunks} chunks "
                f"(limit: SIEVE_MAX_DOCUMENT_CHUNKS); split it into smaller documents"
            )

    def check_text(self, text: str, name: str) -> None:
        """Characters and lines of an already decoded text (C-speed counts, no copies)."""
        self.check_chars(len(text), name)
        self.check_paragraphs(text.count("\n") + 1, name, "lines")


DEFAULT_LIMITS = ExtractionLimits()
