"""Domain exceptions → HTTP status codes, in one place. Every error body is {"detail": reason}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.library import DocumentNotFoundError
from app.llm import LLMError
from app.parsing import ParseError, UnsupportedFormatError
from app.pipeline import UnknownBackendError

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
    (DocumentNotFoundError, 404),
    (LLMError, 502),
]


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status in _STATUS:
        app.add_exception_handler(exc_type, _handler(status))


def _handler(status: int):  # type: ignore[no-untyped-def]
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handle
