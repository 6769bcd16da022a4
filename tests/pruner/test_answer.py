"""The answer score: headings never answer; keep probability and cosine are mixed."""

from __future__ import annotations

import pytest

from pruner import answer_scores, is_heading_like


@pytest.mark.parametrize(
    "text",
    [
        "END OF TERMS AND CONDITIONS",
        "8. Litigation",
        "8. Litigation.",  # a numbered clause's title, even with its full stop
        "6. Trademarks.",
        "Definitions.",
        "How to Apply These Terms to Your New Programs",
        "SECTION 4. WARRANTY DISCLAIMER.",
        "- Installation",
        "",
    ],
)
def test_headings_and_labels_are_heading_like(text: str) -> None:
    assert is_heading_like(text)


@pytest.mark.parametrize(
    "text",
    [
        "The licence terminates when you sue a contributor.",
        "Patent licenses granted to You under this License for that Work shall terminate.",
        "It opened in 1889.",
        "It is 42.",
        "Yes, it does.",
        "NASA launched the probe in 1977 to study the outer planets.",
    ],
)
def test_statements_are_not(text: str) -> None:
    assert not is_heading_like(text)


def test_answer_scores_mix_keep_and_cosine_and_drop_headings() -> None:
    sentences = ["END OF TERMS AND CONDITIONS", "The licence ends when you sue.", "Other text."]
    scores = answer_scores(sentences, [0.9, 0.5, 0.5], [0.2, 0.6, -0.3], weight=0.5)
    assert scores[0] == 0.0
    assert scores[1] == pytest.approx(0.55)
    assert scores[2] == pytest.approx(0.25)  # a negative cosine counts as 0
    assert answer_scores(sentences, [0.9, 0.5, 0.5], [0.2, 0.6, 0.1], weight=0.0)[1] == 0.5


def test_answer_scores_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="one keep score"):
        answer_scores(["a."], [0.5, 0.4], [0.1])
    with pytest.raises(ValueError, match="weight"):
        answer_scores(["a."], [0.5], [0.1], weight=2.0)
