"""Follow-up detection and rewriting of chat turns into a standalone question."""

from __future__ import annotations

import asyncio

import pytest

from app.conversation import (
    ConversationError,
    Turn,
    heuristic_rewrite,
    is_follow_up,
    split_turns,
    standalone_question,
)
from app.llm import LLMError

HISTORY = [
    Turn("user", "Who directed Nightfall Harbor?"),
    Turn("assistant", "Orla Venkatesan directed it [1].\n\nSources:\n[1] Nightfall Harbor"),
]


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("Where did she train?", True),
        ("And the budget?", True),
        ("Why?", True),
        ("Who is Orla?", False),
        ("What about its sequel?", True),
        ("How long is the warranty on the X200 drill?", False),
        ("Which river flows through the city that hosted the 1900 Olympics?", False),
    ],
)
def test_is_follow_up(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


def test_heuristic_adds_previous_names_not_the_sources_list() -> None:
    rewritten = heuristic_rewrite("Where did she train?", HISTORY)
    assert rewritten.startswith("Where did she train? (about ")
    assert "Nightfall Harbor" in rewritten and "Orla Venkatesan" in rewritten
    assert "[1]" not in rewritten and "Sources" not in rewritten
    # no names to carry over: the previous question itself is prepended
    assert heuristic_rewrite("and then?", [Turn("user", "how do i reset it")]) == (
        "how do i reset it and then?"
    )
    two = [Turn("user", "Who runs the fair?"), Turn("assistant", "The Arts Fair. The Guild.")]
    assert "Arts Fair. The" not in heuristic_rewrite("When does it open?", two)
    # whatever the client sent earlier, the rewritten question stays bounded
    long = heuristic_rewrite("and?", [Turn("user", "word " * 50_000)])
    assert len(long) < 700


def test_split_turns_validates() -> None:
    question, history = split_turns([Turn("system", "be nice"), *HISTORY, Turn("user", " Q? ")])
    assert question == "Q?" and history == HISTORY
    for turns in ([], [Turn("assistant", "hi")], [Turn("user", "  ")]):
        with pytest.raises(ConversationError):
            split_turns(turns)


class _Completer:
    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.calls = 0

    async def complete_text(self, instruction: str, max_tokens: int = 64) -> str:
        self.calls += 1
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_llm_rewrite_and_fallbacks() -> None:
    ok = _Completer('"Where did Orla Venkatesan train?"\nextra line')
    r = asyncio.run(standalone_question("Where did she train?", HISTORY, ok))
    assert (r.how, r.question) == ("llm", "Where did Orla Venkatesan train?")
    for bad in (_Completer(LLMError("down")), _Completer("  ")):
        r = asyncio.run(standalone_question("Where did she train?", HISTORY, bad))
        assert r.how == "heuristic" and "Orla Venkatesan" in r.question
    # not a follow-up, or no history: asked as is, the LLM is not called
    quiet = _Completer("x")
    r = asyncio.run(standalone_question("Who built the Kessel Point lighthouse?", HISTORY, quiet))
    assert r.how == "none" and quiet.calls == 0
    assert asyncio.run(standalone_question("Why?", [], quiet)).how == "none"
