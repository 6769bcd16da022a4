"""Reading uploaded files into checked documents, with bounded work per file and per upload.

An upload is authorised first (app/api/routes/documents.py); only then is anything parsed,
here. Each file is parsed and chunked once, to check it (→ 4xx, nothing stored, when one is
bad) and to prepare it (its ingestion job embeds these chunks, see :mod:`app.prepared`): text
sent as JSON, txt and md in a worker thread (our own parsers, linear in the text, capped by
:class:`ExtractionLimits` before any splitting), PDF, docx and HTML in a child process
with a deadline and a memory cap (``run_isolated``). At most ``max_parallel_parses`` files are
read at once; the rest wait asynchronously, holding no thread.

This module imports nothing heavy: the parsing child process preloads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio

from app.parsing import (
    Chunking,
    ExtractionLimitError,
    ExtractionLimits,
    ParsedDocument,
    ParseError,
    detect_format,
    parse_document,
    parse_text,
)
from app.parsing.isolated import run_isolated
from app.prepared import Prepared, prepare
from app.settings import Settings

_ISOLATED_FORMATS = frozenset({"pdf", "docx", "html"})


@dataclass(frozen=True)
class JobFile:
    """One document of an upload as the client sent it: a file, or a JSON document (``data``
    is then ``{"title", "text", "format", "metadata"}`` as UTF-8 JSON)."""

    kind: Literal["file", "json"]
    name: str
    data: bytes
    content_type: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class UploadLimits:
    extraction: ExtractionLimits
    chunking: Chunking
    max_job_chunks: int
    timeout_s: float
    memory_mb: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            ExtractionLimits(
                max_chars=settings.max_document_chars,
                max_pages=settings.max_document_pages,
                max_paragraphs=settings.max_document_paragraphs,
                max_chunks=settings.max_document_chunks,
            ),
            settings.chunking,
            settings.max_job_chunks,
            settings.parse_timeout_s,
            settings.parse_memory_mb,
        )


def parse_file(f: JobFile, limits: ExtractionLimits) -> ParsedDocument:
    """The document of one file as sent (JSON documents keep their metadata)."""
    if f.kind == "json":
        doc = json.loads(f.data)
        parsed = parse_text(doc["title"], doc["text"], doc.get("format", "txt"), limits)
        return dataclasses.replace(parsed, metadata={**parsed.metadata, **doc.get("metadata", {})})
    return parse_document(f.data, f.name, f.content_type, limits)


def read_file(f: JobFile, limits: UploadLimits) -> Prepared:
    """Parse and chunk one file within the limits; ``ParseError`` when it has nothing to index.
    Blocking: call it in a worker thread (or through :func:`check_file`)."""
    return prepare(parse_file(f, limits.extraction), f.name, limits.chunking, f.external_id)


def isolated(f: JobFile) -> bool:
    """Whether the file's parser runs in a child process (tree-building binary/markup parsers)."""
    if f.kind == "json":
        return False
    try:
        return detect_format(f.data, f.name, f.content_type) in _ISOLATED_FORMATS
    except ParseError:
        return False  # read_file raises the same error, with the same message


def check_file(f: JobFile, limits: UploadLimits) -> Prepared:
    """:func:`read_file`, in a child process for PDF, docx and HTML. Blocking."""
    if isolated(f):
        return run_isolated(
            read_file,
            f,
            limits,
            name=f.name,
            timeout_s=limits.timeout_s,
            memory_mb=limits.memory_mb,
        )
    return read_file(f, limits)


class UploadsBusyError(RuntimeError):
    """Too many uploads are being read and checked at once; the client should retry (503)."""

    retry_after_s = 5


class UploadChecker:
    """Checks the files of uploads, ``max_parallel_parses`` at a time across all requests; at
    most ``max_pending_uploads`` uploads are read or wait to be checked at once (each holds its
    body in memory), more get 503 before their body is read."""

    def __init__(self, settings: Settings) -> None:
        self.limits = UploadLimits.of(settings)
        self._limiter = anyio.CapacityLimiter(settings.max_parallel_parses)
        self.max_pending = settings.max_pending_uploads
        self._pending = 0  # only touched on the event loop

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``max_pending_uploads`` places while an upload is read and checked."""
        if self._pending >= self.max_pending:
            raise UploadsBusyError(
                f"{self._pending} uploads are being read and checked; try again in a few seconds"
            )
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    async def check(self, files: Sequence[JobFile]) -> list[Prepared]:
        """Every file's prepared document, in order; raises the first file's error (4xx), or
        ``ExtractionLimitError`` once the files together pass the job's chunk limit."""
        documents: list[Prepared] = []
        chunks = 0
        for f in files:
            checked = await anyio.to_thread.run_sync(
                check_file, f, self.limits, limiter=self._limiter
            )
            chunks += len(checked.chunks)
            if chunks > self.limits.max_job_chunks:
                raise ExtractionLimitError(
                    f"this upload would become more than {self.limits.max_job_chunks} chunks "
                    f"(at '{f.name}'; limit: SIEVE_MAX_JOB_CHUNKS): upload fewer files at once"
                )
            documents.append(checked)
        return documents

    async def decode_json(self, body: bytes) -> object:
        """``json.loads`` off the event loop (a large body takes a while); a nesting too deep
        for the parser is a ``ValueError`` like any other invalid JSON."""
        return await anyio.to_thread.run_sync(decode_json, body, limiter=self._limiter)


def decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
