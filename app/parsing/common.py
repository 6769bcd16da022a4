"""Helpers every format parser shares: names, decoding, heading stacks and a text builder.

A parser's job is to produce the canonical plain text of a document plus ``Section`` offsets into
it. The bookkeeping that makes those offsets right (separators between blocks, the heading stack,
trimming section bodies to their non-blank extent) lives here once, so each format module only
describes its own format.
"""

from __future__ import annotations

import codecs
import re
from pathlib import PurePosixPath

from app.parsing.types import ParsedDocument, ParseError, Section

SUPPORTED = "txt, md, html, pdf, docx"
MAX_HEADING_CHARS = 200  # a heading path entry is a label; cap pathological "headings"
MAX_TITLE_LINE_CHARS = 120
MAX_TITLE_CHARS = 500

# C0 controls other than \t \n \v \f \r and ESC (ANSI colours in logs are still text).
_CONTROL = re.compile(r"[\x01-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BINARY_SAMPLE_CHARS = 65536
_BINARY_CONTROL_RATIO = 0.01

_SENTENCE_BREAK = re.compile(r"[.!?]\s+\S")

RawRange = tuple[tuple[str, ...], int, int, int | None]  # (heading_path, start, end, page)


def display_name(filename: str) -> str:
    """The name used in error messages."""
    return filename or "upload"


def file_stem(filename: str) -> str:
    """``'reports/Q3 notes.md'`` -> ``'Q3 notes'``; the fallback title of every format."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return clean_inline(PurePosixPath(base).stem) or "untitled"


# Characters that never belong in a one-line label (title, heading, file name): C0/C1 controls
# (ESC sequences rewrite an operator's terminal) and the bidi embeddings/overrides/isolates that
# reorder what a reader sees ("Trojan source").
# Lone surrogates too: they cannot be encoded, so a stored one breaks every response listing it.
UNSAFE_INLINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def clean_inline(text: str, limit: int | None = None) -> str:
    """Collapse runs of whitespace to one space, drop control and bidi-override characters;
    cut to ``limit`` chars with an ellipsis."""
    cleaned = " ".join(UNSAFE_INLINE.sub(" ", text).split())
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def first_line_title(text: str, limit: int = MAX_TITLE_LINE_CHARS) -> str | None:
    """The first non-blank line when it reads like a title, else None.

    A title is short and holds at most one sentence: a wrapped paragraph ("Expense policy.
    Employees may claim…") is prose, and the file name makes a better title for it.
    """
    pos = 0
    while pos < len(text):
        newline = text.find("\n", pos)
        stop = len(text) if newline < 0 else newline
        line = text[pos:stop].strip()
        if line:
            prose = _SENTENCE_BREAK.search(line) is not None or line.endswith((",", ";", ":"))
            return line if len(line) <= limit and not prose else None
        pos = stop + 1
    return None


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n")


def check_text(text: str, name: str) -> None:
    """Reject text that is blank or binary junk that happened to decode."""
    if "\x00" in text:
        raise ParseError(f"'{name}' looks binary (it contains NUL bytes), not text")
    sample = text[:_BINARY_SAMPLE_CHARS]
    controls = len(_CONTROL.findall(sample))
    if controls > _BINARY_CONTROL_RATIO * len(sample):
        raise ParseError(
            f"'{name}' looks binary ({controls} control characters in its first "
            f"{len(sample)} characters), not text"
        )
    if not text.strip():
        raise ParseError(f"'{name}' is empty: it contains only whitespace")


def decode_utf8(data: bytes, name: str) -> str:
    """Strict UTF-8 (a leading BOM is dropped), CRLF -> LF, then the text sanity checks."""
    if b"\x00" in data:
        raise ParseError(f"'{name}' looks binary (it contains NUL bytes), not text")
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        raise ParseError(
            f"'{name}' is not valid UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); "
            "save it as UTF-8 and upload it again"
        ) from None
    text = normalize_newlines(text)
    check_text(text, name)
    return text


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` so it neither starts nor ends with whitespace (may become empty)."""
    piece = text[start:end]
    stripped = piece.lstrip()
    start += len(piece) - len(stripped)
    return start, start + len(stripped.rstrip())


def make_sections(text: str, ranges: list[RawRange]) -> list[Section]:
    """Trim each raw range to its non-blank extent and drop the ones left empty."""
    sections = []
    for path, start, end, page in ranges:
        s, e = trim(text, start, end)
        if s < e:
            sections.append(Section(path, s, e, page))
    return sections


def finish(
    name: str,
    fmt: str,
    title: str,
    text: str,
    sections: list[Section],
    metadata: dict[str, str] | None = None,
) -> ParsedDocument:
    """Build the record, refusing documents with nothing to index. The title is made one safe
    line (it is shown in terminals and pages), and so are metadata values."""
    if not sections:
        raise ParseError(f"'{name}' contains no text (nothing but headings or blank content)")
    safe = {k: clean_inline(v) for k, v in (metadata or {}).items()}
    title = clean_inline(title, MAX_TITLE_CHARS) or file_stem(name)
    return ParsedDocument(title, text, sections, fmt, safe)


class HeadingStack:
    """The open headings: a level-``n`` heading closes every open heading of level >= n."""

    def __init__(self) -> None:
        self._items: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> tuple[str, ...]:
        while self._items and self._items[-1][0] >= level:
            self._items.pop()
        if title:
            self._items.append((level, title))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._items)


class TextBuilder:
    """Appends blocks of text with newline separators and records sections as it goes.

    Separators are requested, not written: ``request_break(2)`` asks for a blank line before the
    next block, ``request_break(1)`` for a line break; the strongest request wins and nothing is
    written before the first block or after the last, so the text never starts or ends blank.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._pending = 0
        self._headings = HeadingStack()
        self._open: tuple[tuple[str, ...], int, int | None] = ((), 0, None)
        self._ranges: list[RawRange] = []

    def request_break(self, level: int) -> None:
        self._pending = max(self._pending, level)

    def write(self, text: str) -> None:
        if not text:
            return
        if self._length and self._pending:
            self._append("\n" * self._pending)
        self._pending = 0
        self._append(text)

    def heading(self, level: int, title: str) -> None:
        """Write a heading line and start the section under it (the line is not in its body)."""
        label = clean_inline(title, MAX_HEADING_CHARS)
        if not label:
            return
        self._close()
        self.request_break(2)
        self.write(clean_inline(title))
        self.request_break(2)
        self._open = (self._headings.push(level, label), self._length, None)

    def start_section(self, path: tuple[str, ...], page: int | None = None) -> None:
        self._close()
        self._open = (path, self._length, page)

    @property
    def length(self) -> int:
        """Characters written so far."""
        return self._length

    def build(self) -> tuple[str, list[Section]]:
        self._close()
        text = "".join(self._parts)
        return text, make_sections(text, self._ranges)

    def _append(self, text: str) -> None:
        self._parts.append(text)
        self._length += len(text)

    def _close(self) -> None:
        path, start, page = self._open
        if start < self._length:
            self._ranges.append((path, start, self._length, page))
        self._open = (path, self._length, page)
