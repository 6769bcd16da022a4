"""Request bodies of the OpenAI- and Ollama-compatible chat endpoints.

Unknown fields are ignored, not refused: chat clients send many options (temperature, top_p,
keep_alive…) that mean nothing to a retrieval pipeline. Sieve's own knobs may be added to any
request (``top_k``, ``retrieval``, ``prune_threshold``, ``llm``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.conversation import ROLES, Turn

Role = Literal["system", "developer", "user", "assistant", "tool"]
assert set(ROLES) == {"system", "developer", "user", "assistant", "tool"}
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(..., max_length=50)
    text: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[ContentPart] | None = Field(None, max_length=MAX_MESSAGE_CHARS)

    def turn(self) -> Turn:
        if isinstance(self.content, list):  # OpenAI content parts: the text ones only
            text = "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        else:
            text = self.content or ""
        return Turn(self.role, text)


class SieveOptions(BaseModel):
    """Sieve's own knobs, accepted on every chat request."""

    model_config = ConfigDict(extra="ignore")

    top_k: int | None = Field(None, ge=1, le=100)
    retrieval: Literal["vector", "lexical", "graph", "hybrid"] | None = None
    prune_threshold: float | None = Field(None, ge=0.0, le=1.0)
    llm: str | None = Field(None, max_length=50, description="Answer backend.")

    def overrides(self) -> dict[str, object]:
        return {
            "top_k": self.top_k,
            "retrieval": self.retrieval,
            "prune_threshold": self.prune_threshold,
            "llm": self.llm,
        }


class ChatCompletionRequest(SieveOptions):
    """OpenAI ``POST /v1/chat/completions``: any model name is accepted."""

    model: str = Field("sieve", max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False


class OllamaChatRequest(SieveOptions):
    """Ollama ``POST /api/chat``; like Ollama, it streams unless ``stream`` is false."""

    model: str = Field("sieve", max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    stream: bool = True


class OllamaGenerateRequest(SieveOptions):
    """Ollama ``POST /api/generate``: ``prompt`` is the question; an empty one only "loads"."""

    model: str = Field("sieve", max_length=200)
    prompt: str = Field("", max_length=MAX_MESSAGE_CHARS)
    stream: bool = True


class OllamaShowRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
