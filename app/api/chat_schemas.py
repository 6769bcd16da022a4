"""Request bodies of the OpenAI- and Ollama-compatible chat endpoints.

Unknown fields are ignored, not refused: chat clients send many options (temperature, top_p,
keep_alive…) that mean nothing to a retrieval pipeline. Sieve's own knobs may be added to any
request (app/api/options.py ``AskKnobs``: ``top_k``, ``candidates``, ``prune_threshold``,
``max_context_tokens``, ``llm``, ``retrieval``, ``hops``), and ``collection``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.api.chat import MODEL_ID
from app.api.options import AskKnobs
from app.collections import NAME_PATTERN
from app.conversation import Turn

Role = Literal["system", "developer", "user", "assistant", "tool"]
MAX_MESSAGES = 1000  # chat front ends resend the whole history; only the last turns are read
MAX_MESSAGE_CHARS = 100_000
MAX_CONVERSATION_CHARS = 1_000_000
MAX_PARTS = 64
M = TypeVar("M", bound=BaseModel)


def _utf8(value: Any) -> Any:
    """Refuse strings that cannot be encoded (a lone surrogate from ``"\\ud800"`` in JSON):
    they would fail later, when the answer echoes them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text is not valid Unicode (lone surrogate)") from exc
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    _check_text = field_validator("*")(classmethod(lambda cls, v: _utf8(v)))


class ContentPart(_Strict):
    type: str = Field(..., max_length=50)
    text: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)


class ChatMessage(_Strict):
    role: Role
    content: (
        Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]
        | Annotated[list[ContentPart], Field(max_length=MAX_PARTS)]
        | None
    ) = None

    def turn(self) -> Turn:
        if isinstance(self.content, list):  # OpenAI content parts: the text ones only
            text = "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        else:
            text = self.content or ""
        return Turn(self.role, text)


class SieveOptions(AskKnobs):
    """Sieve's own knobs (app/api/options.py), accepted on every chat request; fields a chat
    client adds for its own server (temperature, …) are ignored."""

    model_config = ConfigDict(extra="ignore")
    _check_text = field_validator("*")(classmethod(lambda cls, v: _utf8(v)))

    collection: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Collection to search (else the model name's tag, `sieve:<collection>`, "
        "else the key's only collection).",
    )

    def collection_asked(self) -> str | None:
        model = getattr(self, "model", None) or ""
        tag = model.split(":", 1)[1] if model.startswith(f"{MODEL_ID}:") else ""
        return self.collection or (tag if tag and tag != "latest" else None)


class _Conversation(SieveOptions):
    model: str = Field("sieve", max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)

    @model_validator(mode="after")
    def _bounded(self) -> _Conversation:
        total = sum(len(m.turn().content) for m in self.messages)
        if total > MAX_CONVERSATION_CHARS:
            raise ValueError(f"messages hold {total} characters, limit is {MAX_CONVERSATION_CHARS}")
        return self


class ChatCompletionRequest(_Conversation):
    """OpenAI ``POST /v1/chat/completions``: any model name is accepted."""

    stream: bool = False


class OllamaChatRequest(_Conversation):
    """Ollama ``POST /api/chat``; like Ollama, it streams unless ``stream`` is false."""

    stream: bool = True


class OllamaGenerateRequest(SieveOptions):
    """Ollama ``POST /api/generate``: ``prompt`` is the question; an empty one only "loads"."""

    model: str = Field("sieve", max_length=200)
    prompt: str = Field("", max_length=MAX_MESSAGE_CHARS)
    stream: bool = True


class OllamaShowRequest(_Strict):
    model: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)


def any_content_type(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading the body as JSON whatever its content type says: Ollama accepts
    ``curl -d '{…}'`` (sent as form-urlencoded), so its clients and docs never set one.
    Errors become the usual 422."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except RecursionError:
            msg = "body is not valid JSON: nested too deeply"
            raise RequestValidationError([{"loc": ("body",), "msg": msg}]) from None
        except (ValueError, UnicodeDecodeError) as exc:
            msg = f"body is not valid JSON: {exc}"
            raise RequestValidationError([{"loc": ("body",), "msg": msg}]) from exc
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc

    return parse


DEFS_TEMPLATE = "#/components/schemas/{model}"


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting the body of a route that parses it itself. Its nested
    models refer to ``components/schemas``, where :func:`hoist_defs` moves them (a ``$defs``
    left inside a request body is unresolvable for Swagger UI and ReDoc)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema(ref_template=DEFS_TEMPLATE)}
            },
        }
    }


def hoist_defs(openapi: dict[str, Any]) -> dict[str, Any]:
    """Move the ``$defs`` of :func:`json_body_doc` bodies into ``components/schemas``."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            content = (operation.get("requestBody") or {}).get("content", {})
            for media in content.values():
                schemas.update(media.get("schema", {}).pop("$defs", {}))
    return openapi
