"""The LLM contract: turn a question and its compacted, numbered context into an answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class LLMError(RuntimeError):
    """The LLM backend failed (unreachable, timed out, bad response); the message says how."""

    retryable = False


class LLMBusyError(LLMError):
    """The backend has too many requests waiting; the client should retry later (503)."""


class LLMTransientError(LLMError):
    """A failure worth retrying: the backend was unreachable, timed out, or answered 429/5xx.
    Other LLMErrors (a 400 or 401, a malformed response) would fail the same way again."""

    retryable = True


@dataclass(frozen=True)
class ContextSentence:
    text: str
    score: float  # the pruner's keep probability
    answer: float | None = None  # how well it answers the question (pruner.answer); None: unknown


@dataclass(frozen=True)
class Passage:
    """One numbered passage of the compacted context."""

    n: int
    title: str
    heading_path: tuple[str, ...]
    sentences: list[ContextSentence]

    @property
    def header(self) -> str:
        path = " > ".join(h for h in self.heading_path if h and h != self.title)
        return f"[{self.n}] {self.title}" + (f" — {path}" if path else "")

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


_FENCE = re.compile(r"</?\s*context\s*>", re.IGNORECASE)


def fence_context(context: str) -> str:
    """``context`` inside ``<context>`` … ``</context>``, with any such tag in the documents
    themselves defused, so a passage cannot close the fence and speak as the prompt."""
    return f"<context>\n{_FENCE.sub('[context tag removed]', context)}\n</context>"


def render_context(passages: list[Passage]) -> str:
    """The exact context string given to the LLM: numbered passages, blank-line separated."""
    return "\n\n".join(f"{p.header}\n{p.text}" for p in passages)


class LLM(Protocol):
    name: str

    async def generate(self, question: str, passages: list[Passage]) -> str:
        """Answer using only ``passages``, citing them as [n]."""
        ...

    def stream(self, question: str, passages: list[Passage]) -> AsyncIterator[str]:
        """The same answer as ``generate``, as text pieces while they are produced; joined,
        they are the whole answer. Errors raise LLMError, possibly after some pieces."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TextCompleter(Protocol):
    """A backend that can also follow a free instruction (used to rewrite follow-up questions
    into standalone ones). The extractive backend is not one."""

    async def complete_text(self, instruction: str, max_tokens: int = 64) -> str:
        """The model's reply to ``instruction``, stripped."""
        ...
