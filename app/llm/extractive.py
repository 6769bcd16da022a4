"""Extractive answers: no model, just the best kept sentences with their [n] citations: best by
answer score (``pruner.answer``: keep probability mixed with the question-sentence cosine,
headings never eligible) when the pipeline computed one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.llm.base import Passage


class ExtractiveLLM:
    """Up to ``max_sentences`` sentences, only those scoring within ``relative`` of the best:
    a weak third sentence next to a strong first one is noise in an answer."""

    name = "extractive"

    def __init__(self, max_sentences: int = 3, relative: float = 0.75) -> None:
        if max_sentences <= 0:
            raise ValueError(f"max_sentences must be > 0, got {max_sentences}")
        if not 0.0 <= relative <= 1.0:
            raise ValueError(f"relative must be within [0, 1], got {relative}")
        self.max_sentences = max_sentences
        self.relative = relative

    async def generate(self, question: str, passages: list[Passage]) -> str:
        return " ".join(self._sentences(passages))

    async def stream(self, question: str, passages: list[Passage]) -> AsyncIterator[str]:
        # Nothing is generated, so there is nothing to wait for: one piece per sentence keeps
        # the client's rendering path the same as with a real model.
        for i, piece in enumerate(self._sentences(passages)):
            yield piece if i == 0 else " " + piece

    def _sentences(self, passages: list[Passage]) -> list[str]:
        # by answer score when the pipeline gave one (precision: the sentence that answers),
        # else by keep probability (recall: what the pruner kept)
        ranked = sorted(
            (
                (s.score if s.answer is None else s.answer, p.n, i, s.text)
                for p in passages
                for i, s in enumerate(p.sentences)
            ),
            key=lambda t: (-t[0], t[1], t[2]),
        )[: self.max_sentences]
        if ranked:
            floor = ranked[0][0] * self.relative
            ranked = [t for t in ranked if t[0] >= floor]
        # The passage of the best sentence first (the answer leads), then the others by their
        # best sentence; within a passage in reading order, so the answer flows like the source.
        lead: dict[int, float] = {}
        for score, n, _, _ in ranked:
            lead.setdefault(n, -score)
        ranked.sort(key=lambda t: (lead[t[1]], t[1], t[2]))
        # one line each: a sentence of hard-wrapped text (licences, man pages, mail) keeps the
        # file's line breaks and indentation, which read as broken prose in any chat client
        return [f"{' '.join(text.split())} [{n}]" for _, n, _, text in ranked]

    async def aclose(self) -> None:
        return None
