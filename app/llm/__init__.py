"""Answer backends behind one interface: extractive (default, no model) and OpenAI-compatible."""

from app.llm.base import LLM, ContextSentence, LLMError, Passage, render_context
from app.llm.extractive import ExtractiveLLM
from app.llm.openai import OpenAILLM, build_messages

__all__ = [
    "LLM",
    "ContextSentence",
    "ExtractiveLLM",
    "LLMError",
    "OpenAILLM",
    "Passage",
    "build_messages",
    "render_context",
]
