"""What the chat-compatible endpoints share: turn a conversation into a pipeline run, and
render its answer for a chat client (citations as [n] in the text, a sources list, and the
full citations and stats in an extra ``sieve`` field)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.api.schemas import MAX_QUESTION_CHARS, AskStats, CitationOut
from app.conversation import ConversationError, Rewrite, Turn, split_turns, standalone_question
from app.pipeline import Answer, AskEvent, AskOptions, Citation, Finished, Token
from app.sieve import Sieve

MODEL_ID = "sieve"


@dataclass(frozen=True)
class ChatRun:
    rewrite: Rewrite
    options: AskOptions


async def prepare(
    sieve: Sieve, turns: Sequence[Turn], overrides: dict[str, Any], collection: str
) -> ChatRun:
    """The standalone question and options over ``collection`` (already checked against the
    caller's scope); raises (→ 4xx) before any answer is produced."""
    question, history = split_turns(turns)
    sieve.admit()  # 503 before any work (and before a stream starts)
    if len(question) > MAX_QUESTION_CHARS:
        raise ConversationError(
            f"the question is {len(question)} characters, limit is {MAX_QUESTION_CHARS}"
        )
    options = sieve.options(**overrides, collection=collection)
    mode = sieve.settings.chat_rewrite
    if mode == "off":
        rewrite = Rewrite(question, question, "none")
    else:
        use_llm = mode == "llm" or (mode == "auto" and options.llm == "openai")
        llm = sieve.pipeline.llms.get(options.llm) if use_llm else None
        rewrite = await standalone_question(question, history, llm)
    sieve.check(rewrite.question, options)
    return ChatRun(rewrite, options)


def sources_footer(citations: Sequence[Citation]) -> str:
    """``\\n\\nSources:\\n[1] Title — Section (p. 2)``; "" without citations."""
    lines = []
    for c in citations:
        path = " > ".join(h for h in c.chunk.heading_path if h and h != c.title)
        page = f" (p. {c.chunk.page})" if c.chunk.page else ""
        lines.append(f"[{c.n}] {c.title}" + (f" — {path}" if path else "") + page)
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


def chat_text(answer: Answer, with_sources: bool) -> str:
    return answer.answer + (sources_footer(answer.citations) if with_sources else "")


def sieve_extra(answer: Answer, rewrite: Rewrite) -> dict[str, Any]:
    return {
        "question": rewrite.question,
        "rewritten": rewrite.how,
        "abstained": answer.abstained,
        "llm": answer.llm,
        "degraded": answer.degraded,
        "citations": [CitationOut.of(c).model_dump() for c in answer.citations],
        "stats": AskStats.of(answer).model_dump(),
    }


async def answer_pieces(
    events: AsyncIterator[AskEvent], with_sources: bool
) -> AsyncIterator[str | Answer]:
    """The answer text as it streams (``events``: :meth:`Sieve.ask_stream`'s), then the sources
    footer as one piece, then the Answer."""
    async for event in events:
        if isinstance(event, Token):
            yield event.text
        elif isinstance(event, Finished):
            if with_sources and event.answer.citations:
                yield sources_footer(event.answer.citations)
            yield event.answer
