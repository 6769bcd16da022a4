"""Chunking: whole sentences, word limits, section boundaries, order and full coverage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.parsing import ParsedDocument, Section, chunk_document, parse_text, split_sentences


def words(doc: ParsedDocument, start: int, end: int) -> int:
    return len(doc.text[start:end].split())


def make_doc(sections: list[list[int]]) -> ParsedDocument:
    """One section per entry; each sentence is ``n`` words long and ends with a full stop."""
    parts, spans = [], []
    position = 0
    for index, lengths in enumerate(sections):
        heading = f"Heading {index}\n\n"
        body = " ".join("Word " + "w " * (n - 2) + "end." if n > 1 else "Yes." for n in lengths)
        parts.append(heading + body + "\n\n")
        start = position + len(heading)
        spans.append(Section((f"Heading {index}",), start, start + len(body), page=index + 1))
        position += len(parts[-1])
    return ParsedDocument("t", "".join(parts), [s for s in spans if s.start < s.end], "md")


def check_chunks(doc: ParsedDocument, target: int, maximum: int) -> None:
    chunks = chunk_document(doc, target, maximum)
    expected = [
        (section, span)
        for section in doc.sections
        for span in split_sentences(doc.text, section.start, section.end)
    ]
    # Every sentence exactly once, in order, uncut, and in a chunk of its own section.
    assert [span for chunk in chunks for span in chunk.sentences] == [s for _, s in expected]
    owners = iter(section for section, _ in expected)
    sizes = [words(doc, c.start, c.end) for c in chunks]
    chunk_sections = []
    for chunk, size in zip(chunks, sizes, strict=True):
        sections = {next(owners) for _ in chunk.sentences}
        assert len(sections) == 1
        section = sections.pop()
        chunk_sections.append(section)
        assert (chunk.heading_path, chunk.page) == (section.heading_path, section.page)
        assert section.start <= chunk.start < chunk.end <= section.end
        assert size <= maximum or len(chunk.sentences) == 1
    # Greedy: a chunk followed by one of the same section closed because it reached the target
    # or because the next sentence would have pushed it past the maximum.
    for i in range(len(chunks) - 1):
        if chunk_sections[i] is chunk_sections[i + 1]:
            first = chunks[i + 1].sentences[0]
            assert sizes[i] >= target or sizes[i] + words(doc, first.start, first.end) > maximum


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 60), max_size=25), max_size=5),
    st.integers(1, 80),
    st.integers(0, 80),
)
def test_chunk_invariants(sections: list[list[int]], target: int, extra: int) -> None:
    check_chunks(make_doc(sections), target, target + extra)


def test_greedy_packing_closes_at_target() -> None:
    doc = make_doc([[5] * 10])
    chunks = chunk_document(doc, target_words=10, max_words=15)
    assert [words(doc, c.start, c.end) for c in chunks] == [10] * 5


def test_sentence_that_would_overflow_starts_a_new_chunk() -> None:
    doc = make_doc([[8, 8, 8]])
    chunks = chunk_document(doc, target_words=10, max_words=12)
    assert [len(c.sentences) for c in chunks] == [1, 1, 1]


def test_oversized_sentence_is_its_own_chunk() -> None:
    doc = make_doc([[3, 50, 3, 3, 3, 3]])
    chunks = chunk_document(doc, target_words=10, max_words=20)
    assert [words(doc, c.start, c.end) for c in chunks] == [3, 50, 12]


def test_tiny_remainder_merges_into_previous_chunk() -> None:
    doc = make_doc([[10, 10, 2]])
    chunks = chunk_document(doc, target_words=10, max_words=15)
    assert [words(doc, c.start, c.end) for c in chunks] == [10, 12]
    unmerged = chunk_document(doc, target_words=10, max_words=10)
    assert [words(doc, c.start, c.end) for c in unmerged] == [10, 10, 2]


def test_chunks_never_cross_sections() -> None:
    doc = parse_text("t", "# A\nOne two.\n\n# B\nThree four.", "md")
    chunks = chunk_document(doc, target_words=100, max_words=200)
    assert [(c.heading_path, doc.text[c.start : c.end]) for c in chunks] == [
        (("A",), "One two."),
        (("B",), "Three four."),
    ]


@pytest.mark.parametrize(("target", "maximum"), [(0, 10), (-5, 10), (20, 10)])
def test_bad_limits_are_rejected(target: int, maximum: int) -> None:
    with pytest.raises(ValueError, match=str(target)):
        chunk_document(make_doc([[3]]), target, maximum)
