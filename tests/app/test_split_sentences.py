"""The sentence splitter: worked examples plus property tests of its offset invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.parsing import MAX_SENTENCE_CHARS, Span, split_sentences


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def check_invariants(text: str, spans: list[Span], start: int, end: int) -> None:
    covered = [0] * len(text)
    previous_end = start
    for span in spans:
        piece = text[span.start : span.end]
        assert previous_end <= span.start < span.end <= end  # sorted, disjoint, non-empty
        assert piece == piece.strip()
        assert len(piece) <= MAX_SENTENCE_CHARS
        for i in range(span.start, span.end):
            covered[i] += 1
        previous_end = span.end
    for i in range(start, end):
        assert covered[i] == 1 or (covered[i] == 0 and text[i].isspace())


# Characters that exercise every rule: terminals, closers, openers, list/table markers, newlines.
ALPHABET = [*"aAbZz09 .!?…。\"'”)(“|#-*\n\n\t\u00a0\u3000", "Dr.", "e.g.", "U.S.", "1. "]
TRICKY = st.lists(st.sampled_from(ALPHABET), max_size=200).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TRICKY, st.text(max_size=300)), st.data())
def test_invariants_hold_for_any_text_and_range(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)), label="start")
    end = data.draw(st.integers(start, len(text)), label="end")
    spans = split_sentences(text, start, end)
    check_invariants(text, spans, start, end)
    non_space = [i for i in range(start, end) if not text[i].isspace()]
    inside = [i for s in spans for i in range(s.start, s.end) if not text[i].isspace()]
    assert inside == non_space  # every non-space char in exactly one span, in order


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["word", "Word.", "x" * 300, "\n", " "]), max_size=40))
def test_long_pieces_are_cut_to_the_limit(words: list[str]) -> None:
    text = " ".join(words)
    check_invariants(text, split_sentences(text), 0, len(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "It rained. Then it stopped! Did it? Yes.",
            ["It rained.", "Then it stopped!", "Did it?", "Yes."],
        ),
        (
            "Dr. Smith met Mrs. Jones at St. Paul's vs. the rest, etc. and left.",
            ["Dr. Smith met Mrs. Jones at St. Paul's vs. the rest, etc. and left."],
        ),
        (
            "Use tools, e.g. Python. The U.S. Army agreed i.e. Mostly.",
            ["Use tools, e.g. Python.", "The U.S. Army agreed i.e. Mostly."],
        ),
        (
            "Pi is 3.14 exactly. It costs $2.50. Fine.",
            ["Pi is 3.14 exactly.", "It costs $2.50.", "Fine."],
        ),
        (
            "J. R. R. Tolkien wrote it. See Fig. 3 and No. 5 for more.",
            ["J. R. R. Tolkien wrote it.", "See Fig. 3 and No. 5 for more."],
        ),
        (
            'He said "Stop." Then he left. (It was late.) "Why?" she asked.',
            ['He said "Stop."', "Then he left.", "(It was late.)", '"Why?" she asked.'],
        ),
        (
            "the end. lower case does not start a sentence.",
            ["the end. lower case does not start a sentence."],
        ),
        ("Wait... What happened? 2024 was good.", ["Wait...", "What happened?", "2024 was good."]),
        ("这是第一句。这是第二句。", ["这是第一句。", "这是第二句。"]),
    ],
)
def test_sentence_rules(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_line_structure_splits_lists_tables_and_headings() -> None:
    text = (
        "Shopping list\n"
        "- eggs\n- milk\n"
        "1. Preheat the oven. Wait.\n2) Bake\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
        "Name | Score\nAda | 10\n"
        "a sentence that wraps\nonto the next line.\n"
        "Short heading\nBody text starts here.\n\n"
        "A paragraph\n\n\n   \nAnother paragraph"
    )
    assert sentences(text) == [
        "Shopping list",
        "- eggs",
        "- milk",
        "1. Preheat the oven.",
        "Wait.",
        "2) Bake",
        "| a | b |",
        "|---|---|",
        "| 1 | 2 |",
        "Name | Score",
        "Ada | 10",
        "a sentence that wraps\nonto the next line.",
        "Short heading",
        "Body text starts here.",
        "A paragraph",
        "Another paragraph",
    ]


def test_long_wrapped_lines_are_joined() -> None:
    line = "this line is long enough that it is clearly prose and not a heading of any kind at all"
    text = f"{line}\nAnd it Continues here."
    assert sentences(text) == [text]


def test_offsets_respect_start_and_end() -> None:
    text = "Skip this. Keep this one. And this. Not this."
    start, end = text.index("Keep"), text.index("Not") - 1
    spans = split_sentences(text, start, end)
    assert [text[s.start : s.end] for s in spans] == ["Keep this one.", "And this."]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 2), (0, 100)])
def test_bad_ranges_are_rejected(start: int, end: int | None) -> None:
    with pytest.raises(ValueError, match=f"start={start}"):
        split_sentences("short text", start, end)


def test_five_megabyte_single_line_is_cut_into_bounded_pieces() -> None:
    text = "lorem ipsum dolor sit amet " * 200_000  # 5.4 MB, one line, no full stops
    spans = split_sentences(text)
    assert all(0 < s.end - s.start <= MAX_SENTENCE_CHARS for s in spans)
    assert sum(len(text[s.start : s.end].split()) for s in spans) == 1_000_000
    assert all(a.end < b.start for a, b in itertools.pairwise(spans))


def test_text_without_any_whitespace_is_hard_cut() -> None:
    text = "x" * 2500
    assert [(s.start, s.end) for s in split_sentences(text)] == [
        (0, 1000),
        (1000, 2000),
        (2000, 2500),
    ]


def test_blank_input_gives_no_spans() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t ") == []


# ---- hard-wrapped text (licences, man pages, plain-text mail) ----------------------------------

_CLAUSE = (
    "Moreover, Your grants from a particular Contributor are reinstated on an ongoing basis "
    "if such Contributor notifies You of the non-compliance by some reasonable means, this is "
    "the first time You have received notice of non-compliance with this License from such "
    "Contributor, and You become compliant prior to 30 days after Your receipt of the notice. "
    "Nothing in This Section grants Any Right to Use the Trade Names of The Licensor."
)


@pytest.mark.parametrize("width", [60, 72, 79])
@pytest.mark.parametrize("indent", ["", "    "])
def test_hard_wrapped_sentences_are_not_cut_at_capitalised_line_starts(
    width: int, indent: str
) -> None:
    import textwrap

    wrapped = textwrap.fill(
        _CLAUSE, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )
    assert any(line.split()[0][0].isupper() for line in wrapped.splitlines()[1:])  # the trap
    got = [" ".join(s.split()) for s in sentences(wrapped)]
    assert got == [
        _CLAUSE[: _CLAUSE.index(" Nothing")],
        _CLAUSE[_CLAUSE.index("Nothing") :],
    ]


def test_headings_numbered_clauses_and_lists_in_wrapped_text_stay_apart() -> None:
    import textwrap

    body = textwrap.fill(_CLAUSE, 72, initial_indent="   ", subsequent_indent="   ")
    text = (
        "                      TERMS AND CONDITIONS\n\n"
        "8. Litigation. Any litigation relating to this License may be brought\n"
        "only in the courts of a jurisdiction where the defendant maintains its\n"
        "principal place of business.\n\n"
        f"{body}\n\n"
        "   - first item of a list\n"
        "   - Second item of a list\n\n"
        "                    END OF TERMS AND CONDITIONS\n"
    )
    got = [" ".join(s.split()) for s in sentences(text)]
    assert got[0] == "TERMS AND CONDITIONS"
    assert got[1] == "8. Litigation."
    assert got[2].startswith("Any litigation") and got[2].endswith("place of business.")
    assert "- first item of a list" in got and "- Second item of a list" in got
    assert got[-1] == "END OF TERMS AND CONDITIONS"
    assert sum(g.startswith("Moreover") for g in got) == 1
    check_invariants(text, split_sentences(text), 0, len(text))


def test_a_short_title_line_above_prose_still_ends_its_sentence() -> None:
    text = (
        "Installation\n"
        "Run the installer and follow the prompts until it says that it is done.\n"
        "Then restart the machine before you use it for the first time."
    )
    assert sentences(text)[0] == "Installation"
