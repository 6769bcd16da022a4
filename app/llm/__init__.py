"""Answer backends behind one interface: extractive (default, no model), OpenAI-compatible,
and a local GGUF through llama.cpp."""

from app.llm.base import (
    LLM,
    ContextSentence,
    LLMBusyError,
    LLMError,
    LLMTransientError,
    Passage,
    TextCompleter,
    fence_context,
    render_context,
)
from app.llm.extractive import ExtractiveLLM
from app.llm.llamacpp import LlamaCppLLM
from app.llm.openai import OpenAILLM, build_messages
from app.llm.resilient import CircuitBreaker, CircuitOpenError, ResilientLLM, with_resilience

__all__ = [
    "LLM",
    "CircuitBreaker",
    "CircuitOpenError",
    "ContextSentence",
    "ExtractiveLLM",
    "LLMBusyError",
    "LLMError",
    "LLMTransientError",
    "LlamaCppLLM",
    "OpenAILLM",
    "Passage",
    "ResilientLLM",
    "TextCompleter",
    "build_messages",
    "fence_context",
    "render_context",
    "with_resilience",
]
