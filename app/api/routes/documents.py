"""Upload, list, show and delete documents."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from app.api.deps import LibraryDep, SettingsDep
from app.api.errors import BadUploadError, UploadTooLargeError, describe_validation
from app.api.schemas import (
    ChunkOut,
    DeletedDocuments,
    DeleteRequest,
    DocumentDetail,
    DocumentIn,
    DocumentList,
    DocumentOut,
    UploadedDocument,
    UploadResponse,
)
from app.library import Library
from app.parsing import ParsedDocument, parse_document, parse_text

router = APIRouter(prefix="/documents", tags=["documents"])
MAX_NAME_CHARS = 255
MAX_OFFSET = 2**31  # SQLite refuses integers past 2**63 (a 500 if passed through)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "txt, md, html, pdf or docx files",
                        }
                    },
                    "required": ["files"],
                }
            },
            "application/json": {"schema": DocumentIn.model_json_schema()},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=UploadResponse,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload files (multipart, field `files`) or one JSON {title, text, metadata}",
    responses={400: {}, 413: {}, 415: {}, 422: {}},
)
async def upload_documents(
    request: Request, library: LibraryDep, settings: SettingsDep
) -> UploadResponse:
    """All-or-nothing: if any file cannot be read, nothing of the request is stored."""
    content_type = request.headers.get("content-type", "")
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length", "")
    max_request = int(settings.max_request_mb * 1024 * 1024)
    if declared.isdigit() and int(declared) > max_request:  # refuse before reading the body
        raise UploadTooLargeError(f"request is {declared} bytes, limit is {max_request}")
    if content_type.startswith("application/json"):
        parsed = [await _json_document(request, max_bytes)]
    elif content_type.startswith("multipart/form-data"):
        parsed = await _multipart_documents(request, max_bytes)
    else:
        raise BadUploadError(
            f"content type {content_type or 'missing'!r} not supported: send multipart/form-data"
            " with one or more `files`, or application/json {title, text}"
        )
    results = await run_in_threadpool(Library.ingest, library, parsed)
    return UploadResponse(
        documents=[
            UploadedDocument(**DocumentOut.of(r.document).model_dump(), duplicate=r.duplicate)
            for r in results
        ]
    )


async def _json_document(request: Request, max_bytes: int) -> tuple[ParsedDocument, str]:
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():  # stop at the limit instead of buffering the body first
        size += len(part)
        if size > max_bytes:
            raise UploadTooLargeError(f"request body is over the {max_bytes}-byte limit")
        parts.append(part)
    body = b"".join(parts)
    try:
        doc = DocumentIn.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadUploadError(f"request body is not valid UTF-8 JSON: {exc}") from exc
    except ValidationError as exc:
        raise BadUploadError(f"invalid document: {describe_validation(exc.errors())}") from exc
    parsed = parse_text(doc.title, doc.text, doc.format)
    merged = ParsedDocument(
        parsed.title,
        parsed.text,
        parsed.sections,
        parsed.format,
        {**parsed.metadata, **doc.metadata},
    )
    return merged, "json"


async def _multipart_documents(
    request: Request, max_bytes: int
) -> list[tuple[ParsedDocument, str]]:
    form = await request.form()
    uploads = [
        v
        for k, v in form.multi_items()
        if k in ("files", "file") and isinstance(v, StarletteUploadFile)
    ]
    if not uploads:
        raise BadUploadError("no files in the upload: send them in the multipart field `files`")
    parsed: list[tuple[ParsedDocument, str]] = []
    for upload in uploads:
        name = _safe_name(upload)
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UploadTooLargeError(f"{name} is larger than the {max_bytes}-byte limit")
        doc = await run_in_threadpool(parse_document, data, name, upload.content_type)
        parsed.append((doc, name))
    return parsed


def _safe_name(upload: StarletteUploadFile) -> str:
    """Only the base name of what the client sent; it is a label, never a path we open.

    Control characters (NUL, newlines) are dropped, ``.``/``..`` become ``upload`` and the name
    is cut to MAX_NAME_CHARS, keeping its extension (the format is detected from it)."""
    raw = _CONTROL_CHARS.sub("", upload.filename or "")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        return "upload"
    if len(base) > MAX_NAME_CHARS:
        _, dot, extension = base.rpartition(".")
        keep = f"{dot}{extension}" if dot and len(extension) <= 10 else ""
        base = base[: MAX_NAME_CHARS - len(keep)] + keep
    return base


@router.get("", response_model=DocumentList)
def list_documents(
    library: LibraryDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> DocumentList:
    return DocumentList(
        total=library.store.count_documents(),
        documents=[DocumentOut.of(r) for r in library.store.list_documents(limit, offset)],
    )


@router.get("/{document_id}", response_model=DocumentDetail, responses={404: {}})
def get_document(document_id: str, library: LibraryDep) -> DocumentDetail:
    record = library.get(document_id)
    return DocumentDetail(
        **DocumentOut.of(record).model_dump(),
        text=library.store.get_text(document_id) or "",
        chunks=[ChunkOut.of(c) for c in library.store.chunks_of(document_id)],
    )


@router.delete("/{document_id}", status_code=204, responses={404: {}})
def delete_document(document_id: str, library: LibraryDep) -> Response:
    library.delete(document_id)
    return Response(status_code=204)


@router.post("/delete", response_model=DeletedDocuments, responses={404: {}, 422: {}})
def delete_documents(body: DeleteRequest, library: LibraryDep) -> DeletedDocuments:
    """Delete several documents at once, all or nothing: one SQLite transaction and one pass
    over FAISS, BM25 and the knowledge graph; 404 (nothing deleted) if any id is unknown."""
    records = library.delete_many(body.ids)
    return DeletedDocuments(deleted=[r.id for r in records])
