"""Chat turns → the question the pipeline answers.

Chat front ends send the whole conversation; retrieval needs one standalone question. The last
user turn is the question. When it reads like a follow-up ("Where did she train?"), it is
rewritten: by the LLM when the configured backend can follow an instruction, otherwise by a
heuristic that appends the names of the previous question and answer (found with the graph's
entity extractor), which is what the retrievers need to find the right passages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.llm import LLMError, TextCompleter
from app.parsing import split_sentences
from graph import extract

logger = logging.getLogger(__name__)

MAX_TURN_CHARS = 600  # of each earlier turn shown to the rewriting LLM
MAX_REWRITE_CHARS = 1000
_PRONOUNS = frozenset(
    {"it", "its", "he", "she", "him", "her", "his", "hers", "they", "them", "their", "theirs"}
    | {"this", "these", "those", "former", "latter"}
)
_OPENERS = ("and ", "and?", "what about", "how about", "also ", "but ")
_WORD = re.compile(r"[A-Za-z']+")
_MARKER = re.compile(r"\s*\[\d+\]")
_SOURCES = re.compile(r"\n+Sources:.*", re.S)


class ConversationError(ValueError):
    """The messages hold no question to answer (e.g. the last turn is not the user's)."""


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True)
class Rewrite:
    original: str
    question: str
    how: str  # "none" (asked as is), "heuristic" or "llm"


def split_turns(turns: Sequence[Turn]) -> tuple[str, list[Turn]]:
    """The last user turn's text and the user/assistant turns before it."""
    if not turns:
        raise ConversationError("messages must not be empty")
    last = turns[-1]
    if last.role != "user":
        raise ConversationError(f"the last message must be the user's, got role {last.role!r}")
    if not last.content.strip():
        raise ConversationError("the last user message has no text")
    history = [t for t in turns[:-1] if t.role in ("user", "assistant") and t.content.strip()]
    return last.content.strip(), history


def is_follow_up(question: str) -> bool:
    """Questions that open like a continuation ("and…", "what about…"), hold a pronoun, or
    are short and name nothing of their own ("Why?", but not "Who is Orla?")."""
    words = _WORD.findall(question.lower())
    if not words:
        return False
    if question.lower().lstrip().startswith(_OPENERS) or any(w in _PRONOUNS for w in words):
        return True
    return len(words) <= 3 and not any(not m.weak for m in extract([question]))


def heuristic_rewrite(question: str, history: Sequence[Turn]) -> str:
    """The question plus the names of the previous question and the start of its answer."""
    previous = next((t.content for t in reversed(history) if t.role == "user"), None)
    if previous is None:
        return question
    previous = " ".join(previous.split())[:MAX_TURN_CHARS]  # bounded, whatever the client sent
    answer = next((t.content for t in reversed(history) if t.role == "assistant"), "")
    answer = _MARKER.sub("", _SOURCES.sub("", answer))[:MAX_TURN_CHARS]
    own = {m.key for m in extract([question])}
    names: list[str] = []
    seen: set[str] = set()
    # sentence by sentence: a name never runs across a full stop ("Fair. The")
    sentences = [answer[sp.start : sp.end] for sp in split_sentences(answer)]
    for m in extract([previous, *sentences]):
        if m.key not in own and m.key not in seen and not m.weak:
            seen.add(m.key)
            names.append(m.text)
    if not names:
        return f"{previous.strip()} {question}"
    return f"{question} (about {', '.join(names[:4])})"


async def standalone_question(
    question: str, history: Sequence[Turn], llm: object | None = None
) -> Rewrite:
    """``question`` made standalone when it is a follow-up; unchanged otherwise."""
    if not history or not is_follow_up(question):
        return Rewrite(question, question, "none")
    if isinstance(llm, TextCompleter):
        try:
            text = await llm.complete_text(_instruction(question, history), max_tokens=96)
        except LLMError as exc:
            logger.warning("follow-up rewrite by the LLM failed, using the heuristic: %s", exc)
        else:
            rewritten = _clean(text)
            if rewritten:
                return Rewrite(question, rewritten, "llm")
    return Rewrite(question, heuristic_rewrite(question, history), "heuristic")


def _instruction(question: str, history: Sequence[Turn]) -> str:
    lines = [
        f"{'User' if t.role == 'user' else 'Assistant'}: "
        + " ".join(_SOURCES.sub("", t.content).split())[:MAX_TURN_CHARS]
        for t in history[-6:]
    ]
    return (
        "Rewrite the last question of this conversation as one standalone question that can "
        "be understood without the conversation: replace pronouns and references with the "
        "names they refer to. Reply with the question only.\n\n"
        + "\n".join(lines)
        + f"\nLast question: {question}\nStandalone question:"
    )


def _clean(text: str) -> str:
    """First non-empty line, unquoted; "" when it is not a plausible question."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.removeprefix("Standalone question:").strip().strip('"“”').strip()
    return line if 3 <= len(line) <= MAX_REWRITE_CHARS else ""
