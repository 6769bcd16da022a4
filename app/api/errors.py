"""Domain exceptions → HTTP status codes, in one place. Every error body is {"detail": reason}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from app.api.access import (
    AmbiguousCollectionError,
    ForbiddenError,
    RateLimitedError,
    UnauthorizedError,
)
from app.api.chat_schemas import hoist_defs
from app.api.validation import describe_validation as describe_validation
from app.collection import DocumentNotFoundError
from app.collections import InvalidCollectionNameError
from app.conversation import ConversationError
from app.jobs import QueueFullError
from app.llm import LLMBusyError, LLMError
from app.parsing import ExtractionLimitError, ParseError, UnsupportedFormatError
from app.pipeline import OverloadedError, UnknownBackendError, UnknownRetrievalError
from app.sieve import RequestLimitError
from app.uploads import UploadsBusyError
from index import ContentConflictError, UnknownCollectionError

logger = logging.getLogger(__name__)


class UploadTooLargeError(ValueError):
    pass


class BadUploadError(ValueError):
    """The request itself is malformed (no files, wrong content type, bad JSON)."""


_STATUS: list[tuple[type[Exception], int]] = [
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (RateLimitedError, 429),
    (AmbiguousCollectionError, 400),
    (InvalidCollectionNameError, 422),
    (UnknownCollectionError, 404),
    (ContentConflictError, 409),
    (UnsupportedFormatError, 415),
    (ExtractionLimitError, 413),
    (RequestLimitError, 422),
    (ParseError, 422),
    (UploadTooLargeError, 413),
    (BadUploadError, 400),
    (UnknownBackendError, 422),
    (UnknownRetrievalError, 422),
    (DocumentNotFoundError, 404),
    (LLMBusyError, 503),
    (OverloadedError, 503),
    (QueueFullError, 503),
    (UploadsBusyError, 503),
    (LLMError, 502),
    (ConversationError, 422),
]


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error is answered with (None: not a client-facing error, a 500)."""
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), None)


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "Why the request failed."},
        "error": {
            "description": "Under /v1 OpenAI's {message, type, code}; under /api Ollama's string."
        },
    },
}


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status in _STATUS:
        app.add_exception_handler(exc_type, _handler(status))
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(ClientDisconnect, _disconnected)
    _document_error_body(app)


def _document_error_body(app: FastAPI) -> None:
    """FastAPI documents every 422 as its list-of-errors body; ours is ``{"detail": reason}``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = hoist_defs(generate()).get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def error_body(path: str, status: int, reason: str) -> dict[str, Any]:
    """``{"detail": reason}``, plus the error shape the chat clients of the compatible APIs
    read: OpenAI's ``{"error": {"message", "type", "code"}}`` under /v1, Ollama's
    ``{"error": reason}`` under /api."""
    body: dict[str, Any] = {"detail": reason}
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "api_error"
        body["error"] = {"message": reason, "type": kind, "code": status}
    elif path.startswith("/api/"):
        body["error"] = reason
    return body


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    reason = describe_validation(exc.errors())
    return JSONResponse(status_code=422, content=error_body(request.url.path, 422, reason))


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    """A body nested deeper than a parser can walk (e.g. 100,000 ``[``): the client's fault."""
    reason = "request body is nested too deeply"
    return JSONResponse(status_code=400, content=error_body(request.url.path, 400, reason))


async def _disconnected(request: Request, exc: Exception) -> Response:
    """The client went away mid-request: nobody reads the answer, so no traceback, no 500."""
    logger.info(
        "%s %s: client disconnected before the request was read", request.method, request.url.path
    )
    return Response(status_code=400)


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if status == 503:  # overload, answered on purpose with Retry-After: not an error
            logger.info("%s %s refused: %s", request.method, request.url.path, exc)
        elif status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        body = error_body(request.url.path, status, str(exc))
        retry = getattr(exc, "retry_after_s", None)
        headers = dict(getattr(exc, "headers", None) or {})
        if retry:
            headers["Retry-After"] = str(retry)
        return JSONResponse(status_code=status, content=body, headers=headers or None)

    return handle
