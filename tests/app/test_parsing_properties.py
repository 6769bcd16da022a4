"""Property tests of parsing as a whole: arbitrary text and bytes in, a ParseError or a document
whose offsets are right out. (The splitter and the chunker alone have theirs in
test_split_sentences.py and test_parsing_chunking.py.)"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.parsing import (
    MAX_SENTENCE_CHARS,
    ParsedDocument,
    ParseError,
    chunk_document,
    parse_document,
    parse_text,
    split_sentences,
)

# Markup of the three text formats, so the generated text reaches their structural rules.
MARKUP = [
    *"aZ09 .!?\n\n\t<>/#-*|`=",
    "# ",
    "## H\n",
    "===\n",
    "```\n",
    "---\n",
    "<p>",
    "</p>",
    "<h1>",
    "</h1>",
    "<li>",
    "<table><tr><td>",
    "<pre>",
    "<br>",
    "<script>",
    "&amp;",
    "Dr. ",
    "\x00",
    "\x07",
    "\ufeff",
    "\r\n",
]
TEXT = st.one_of(st.lists(st.sampled_from(MARKUP), max_size=120).map("".join), st.text())
FORMATS = st.sampled_from(["txt", "md", "html"])


def check_document(doc: ParsedDocument, target: int = 20, maximum: int = 30) -> None:
    """Sections lie in the text in order; chunks are whole sentences of one section each."""
    text = doc.text
    previous = 0
    for section in doc.sections:
        assert previous <= section.start < section.end <= len(text)
        body = text[section.start : section.end]
        assert body == body.strip()
        previous = section.end
    chunks = chunk_document(doc, target_words=target, max_words=maximum)
    by_section = [split_sentences(text, s.start, s.end) for s in doc.sections]
    assert [span for chunk in chunks for span in chunk.sentences] == [
        span for spans in by_section for span in spans
    ]
    for chunk in chunks:
        words = len(text[chunk.start : chunk.end].split())
        assert words <= maximum or len(chunk.sentences) == 1
        for span in chunk.sentences:
            piece = text[span.start : span.end]
            assert piece and piece == piece.strip() and len(piece) <= MAX_SENTENCE_CHARS


@settings(max_examples=150, deadline=None)
@given(TEXT, FORMATS)
def test_parse_text_gives_a_parse_error_or_sound_offsets(text: str, fmt: str) -> None:
    try:
        doc = parse_text("Title", text, fmt)
    except ParseError:
        return
    check_document(doc)


_BINARY_STARTS = st.sampled_from([b"", b"%PDF-1.4\n", b"PK\x03\x04", b"\xef\xbb\xbf", b"<html>"])
NAMES = st.sampled_from(["f.txt", "f.md", "f.html", "f.pdf", "f.docx", "f", "f.exe"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_BINARY_STARTS, st.binary(max_size=2000)).map(b"".join), NAMES)
def test_parse_document_only_ever_raises_parse_error(data: bytes, name: str) -> None:
    try:
        doc = parse_document(data, name)
    except ParseError as exc:
        assert str(exc)  # always a reason
        return
    check_document(doc)


@settings(max_examples=100, deadline=None)
@given(TEXT, FORMATS)
def test_uploaded_text_parses_like_sent_text(text: str, fmt: str) -> None:
    """The same text as a UTF-8 file upload or as JSON: same outcome, same document text."""
    try:
        sent = parse_text("", text, fmt)
    except ParseError:
        sent = None
    try:
        uploaded = parse_document(text.encode("utf-8"), f"doc.{fmt}")
    except ParseError:
        uploaded = None
    if sent is not None and uploaded is not None:
        assert sent.text == uploaded.text
