"""Log formatting: one JSON object per line (or plain text), each carrying the request id.

The request id lives in a ``ContextVar`` set by :class:`ObservabilityMiddleware` for the whole
request; ``anyio.to_thread`` and Starlette's threadpool copy the context, so log lines written
from worker threads (ingestion, the pipeline) carry the id too.

``sieve serve`` applies :func:`logging_config` through uvicorn (``log_config=``), so uvicorn's own
loggers are formatted the same way and its access log is replaced by ours (one line per request,
with the route template, status, duration and request id).
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("sieve_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

# attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName", "color_message"}  # uvicorn's ANSI copy
)


def current_request_id() -> str | None:
    """The id of the HTTP request being handled in this context, or None outside one."""
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` from the context (unless the caller passed one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = REQUEST_ID.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


class TextFormatter(logging.Formatter):
    """Plain text for people at a terminal; ``-`` where no request is being handled."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, defaults={"request_id": "-"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, then any extras
    (``logger.info(..., extra={"status": 200})``) and ``exc`` with the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stderr handler on the root logger in the
    configured format and level; uvicorn's loggers go through it, its access log is muted
    (the middleware writes the access lines)."""
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"sieve": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "sieve",
                "filters": ["request_id"],
            },
            "null": {"class": "logging.NullHandler"},
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": ["null"], "propagate": False},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Apply :func:`logging_config` (for processes that do not run under uvicorn's config)."""
    logging.config.dictConfig(logging_config(settings))
