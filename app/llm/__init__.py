"""Answer backends behind one interface: extractive (default, no model), OpenAI-compatible,
and a local GGUF through llama.cpp."""

from app.llm.base import (
    LLM,
    ContextSentence,
    LLMBusyError,
    LLMError,
    Passage,
    TextCompleter,
    fence_context,
    render_context,
)
from app.llm.extractive import ExtractiveLLM
from app.llm.llamacpp import LlamaCppLLM
from app.llm.openai import OpenAILLM, build_messages

__all__ = [
    "LLM",
    "ContextSentence",
    "ExtractiveLLM",
    "LLMBusyError",
    "LLMError",
    "LlamaCppLLM",
    "OpenAILLM",
    "Passage",
    "TextCompleter",
    "build_messages",
    "fence_context",
    "render_context",
]
