"""bench/realdocs.py: its questions are answerable from the documents it reads."""

from __future__ import annotations

import pytest

from bench.realdocs import QUESTIONS, corpus, first_sentence, norm


def test_matching_ignores_case_and_wrapping() -> None:
    assert norm("Use a  long\n   listing FORMAT") == "use a long listing format"
    assert first_sentence("Sort by time [1]. Then more.\nLine two.") == "Sort by time [1]."


def test_every_expected_string_is_in_its_document() -> None:
    docs = corpus()
    if not docs:
        pytest.skip("no licence texts or man pages on this machine")
    for q in QUESTIONS:
        if q.source in docs:
            assert norm(q.expected) in norm(docs[q.source]), q.text
