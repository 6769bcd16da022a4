"""Domain exceptions → HTTP status codes, in one place. Every error body is {"detail": reason}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.library import DocumentNotFoundError
from app.llm import LLMError
from app.parsing import ParseError, UnsupportedFormatError
from app.pipeline import UnknownBackendError, UnknownRetrievalError

logger = logging.getLogger(__name__)


class UploadTooLargeError(ValueError):
    pass


class BadUploadError(ValueError):
    """The request itself is malformed (no files, wrong content type, bad JSON)."""


_STATUS: list[tuple[type[Exception], int]] = [
    (UnsupportedFormatError, 415),
    (ParseError, 422),
    (UploadTooLargeError, 413),
    (BadUploadError, 400),
    (UnknownBackendError, 422),
    (UnknownRetrievalError, 422),
    (DocumentNotFoundError, 404),
    (LLMError, 502),
]


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status in _STATUS:
        app.add_exception_handler(exc_type, _handler(status))
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]


def describe_validation(errors: Sequence[Any]) -> str:
    """Pydantic errors as one readable line; the offending input is never echoed (it may not
    even be encodable, e.g. a lone surrogate)."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": describe_validation(exc.errors())})


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handle
