"""Records that parsing produces and ingestion consumes.

Every offset is a character offset into ``ParsedDocument.text``: the canonical plain text of the
document that is stored in SQLite and returned to users, so a citation's ``start:end`` always
slices the exact sentence out of it. For txt and md files that text is the decoded upload itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ParseError(ValueError):
    """The upload cannot be turned into text; the message says why (shown to the user)."""


class UnsupportedFormatError(ParseError):
    """The upload's type is not one Sieve reads."""


@dataclass(frozen=True)
class Section:
    """A run of body text under one heading path; ``text[start:end]`` is its body."""

    heading_path: tuple[str, ...]
    start: int
    end: int
    page: int | None = None  # 1-based page number for pdf sections


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    text: str
    sections: list[Section]
    format: str  # "txt" | "md" | "html" | "pdf" | "docx"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)  # millions of them for a long document: no __dict__
class Span:
    """A sentence: ``text[start:end]`` with surrounding whitespace excluded."""

    start: int
    end: int


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is stored: whole sentences of one section, in order."""

    heading_path: tuple[str, ...]
    sentences: list[Span]
    page: int | None = None

    @property
    def start(self) -> int:
        return self.sentences[0].start

    @property
    def end(self) -> int:
        return self.sentences[-1].end
