"""The malformed-file corpus (tests/app/malformed.py) through parse_document.

Every file ends in a ParseError that names it and says why, or in a bounded successful parse,
in bounded time: never an unexpected exception, a hang or a blow-up. Full-scale measurements
(50 MB line, 500k-paragraph docx, 500 MB bomb) come from ``python -m tests.app.malformed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from app.parsing import (
    MAX_SENTENCE_CHARS,
    ExtractionLimitError,
    ParseError,
    UnsupportedFormatError,
    chunk_document,
    parse_document,
)
from app.parsing.detect import MAX_DOCX_BODY_BYTES
from tests.app import malformed

SECONDS = 20.0  # generous: 2 shared CI cores; each case takes well under 2 s here

REFUSED: list[tuple[str, Callable[[], bytes], type[ParseError], str]] = [
    ("half.pdf", malformed.truncated_pdf, ParseError, "not a readable PDF"),
    ("locked.pdf", malformed.encrypted_pdf, ParseError, "is encrypted"),
    ("archive.pdf", malformed.plain_zip, ParseError, "not a PDF .*zip archive"),
    ("archive.docx", malformed.plain_zip, ParseError, "not a Word .docx"),
    ("bomb.docx", lambda: malformed.docx_bomb(40), ParseError, "over the 33554432-byte limit"),
    ("bomb-small.docx", lambda: malformed.docx_bomb(20), ParseError, "not a readable .docx"),
    ("laughs.docx", malformed.docx_entity_expansion, ParseError, "not a readable .docx"),
    ("junk.txt", lambda: malformed.random_bytes(65536), ParseError, "binary|UTF-8"),
    ("image.txt", malformed.png_header, UnsupportedFormatError, "is a PNG image, not txt"),
    ("program.md", malformed.elf_header, UnsupportedFormatError, "is an ELF executable"),
    ("page.html", malformed.gzipped_text, UnsupportedFormatError, "is a gzip archive"),
    ("report.txt", malformed.ascii_pdf, UnsupportedFormatError, "is a PDF document"),
    ("letter.md", lambda: malformed.docx_many_paragraphs(3), UnsupportedFormatError, "zip"),
    ("latin.txt", malformed.invalid_utf8, ParseError, "not valid UTF-8"),
    ("latin.html", malformed.invalid_utf8, ParseError, "not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("name", "build", "error", "reason"), REFUSED, ids=[case[0] for case in REFUSED]
)
def test_malformed_files_are_refused_with_a_reason(
    name: str, build: Callable[[], bytes], error: type[ParseError], reason: str
) -> None:
    data = build()
    started = time.perf_counter()
    with pytest.raises(error, match=reason) as caught:
        parse_document(data, name)
    assert time.perf_counter() - started < SECONDS
    assert name in str(caught.value)


def test_bomb_limit_is_on_the_inflated_body() -> None:
    bomb = malformed.docx_bomb(MAX_DOCX_BODY_BYTES // (1024 * 1024) + 1)
    assert len(bomb) < MAX_DOCX_BODY_BYTES // 100  # the zip itself is small: ratio > 100:1


def _parse_bounded(data: bytes, name: str) -> tuple[str, int]:
    """Parse and chunk within SECONDS; returns the text and the number of chunks."""
    started = time.perf_counter()
    doc = parse_document(data, name)
    chunks = chunk_document(doc)
    assert time.perf_counter() - started < SECONDS
    for chunk in chunks:
        for span in chunk.sentences:
            assert 0 < span.end - span.start <= MAX_SENTENCE_CHARS
    return doc.text, len(chunks)


def test_one_huge_line_is_split_in_bounded_sentences() -> None:
    data = malformed.long_line(4 * 1024 * 1024)  # under SIEVE_MAX_DOCUMENT_CHARS (5 M)
    text, chunks = _parse_bounded(data, "line.txt")
    assert len(text) == len(data) and chunks > 500


def test_text_over_the_character_limit_is_refused_before_splitting() -> None:
    started = time.perf_counter()
    with pytest.raises(ExtractionLimitError, match="SIEVE_MAX_DOCUMENT_CHARS"):
        parse_document(malformed.long_line(8 * 1024 * 1024), "line.txt")
    assert time.perf_counter() - started < 1.0


def test_deeply_nested_html_does_not_recurse() -> None:
    text, chunks = _parse_bounded(malformed.nested_html(100_000), "deep.html")
    assert text == "deep text" and chunks == 1


def test_enormous_attribute_values_are_ignored() -> None:
    text, _ = _parse_bounded(malformed.huge_attribute_html(5 * 1024 * 1024), "attrs.html")
    assert text == "Visible text."


def test_docx_with_many_paragraphs_parses_in_linear_time() -> None:
    # 200k paragraphs took 105 s when python-docx looked each paragraph's style up (now 6 s)
    text, chunks = _parse_bounded(malformed.docx_many_paragraphs(20_000), "many.docx")
    assert text.count("\n\n") == 19_999 and chunks > 100
