"""Which kept sentence answers the question: a precision-oriented score for extractive answers.

The pruner's keep probability is recall-oriented: it says a sentence should stay in the context,
not that it is THE answer. On real documents the most "keepable" sentence is often a heading
("END OF TERMS AND CONDITIONS"), a definition, or the same clause of another licence. The answer
score mixes the keep probability with the MiniLM cosine of question and sentence (what the
bi-encoder knows about matching a question to its answer), and never lets a heading-like line
(short, no final punctuation, or shouting in capitals) answer. The weight is chosen on the tune
families by ``python -m bench.heldout`` (written rule there) and stored as ``ANSWER_COSINE_WEIGHT``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ANSWER_COSINE_WEIGHT = 0.75  # chosen by bench.heldout on the tune families only (rule there)
_FINAL = re.compile(r"[.!?…:;)\]\"'”’»]\s*$")
_LETTER = re.compile(r"[^\W\d_]")
_LIST_NUMBER = re.compile(r"^\s*(?:\(?\d{1,3}[.)]|\(?[a-z][.)]|[-*•–])\s*")
MIN_ANSWER_WORDS = 4


def is_heading_like(text: str) -> bool:
    """A title, a section label or boilerplate line rather than a statement: a numbered or
    Capitalised line of under MIN_ANSWER_WORDS words, most of its letters capitals, or no final
    punctuation and few words or Title Case Words."""
    stripped = text.strip()
    body = _LIST_NUMBER.sub("", stripped, count=1)
    words = body.split()
    if not words:
        return True
    alpha = [w for w in words if w[0].isalpha()]
    if len(words) < MIN_ANSWER_WORDS and (body != stripped or all(w[0].isupper() for w in alpha)):
        return True  # a numbered clause's title ("6. Trademarks.", "8. Litigation.")
    letters = _LETTER.findall(body)
    if len(letters) >= 4 and sum(c.isupper() for c in letters) > 0.7 * len(letters):
        return True  # END OF TERMS AND CONDITIONS, SECTION 4. WARRANTY
    if _FINAL.search(body) is not None:
        return False
    title_case = len(alpha) >= 2 and sum(w[0].isupper() for w in alpha) >= 0.6 * len(alpha)
    return title_case or len(words) < 2 * MIN_ANSWER_WORDS


def answer_scores(
    sentences: Sequence[str],
    keep: Sequence[float],
    cosine: Sequence[float],
    weight: float = ANSWER_COSINE_WEIGHT,
) -> list[float]:
    """One score per sentence in [0, 1] (heading-like lines get 0): ``(1 - weight) * keep +
    weight * max(cosine, 0)``."""
    if not len(sentences) == len(keep) == len(cosine):
        raise ValueError(
            f"one keep score and one cosine per sentence, got {len(sentences)} sentences, "
            f"{len(keep)} keep scores, {len(cosine)} cosines"
        )
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be within [0, 1], got {weight}")
    return [
        0.0 if is_heading_like(s) else (1.0 - weight) * k + weight * max(c, 0.0)
        for s, k, c in zip(sentences, keep, cosine, strict=True)
    ]
