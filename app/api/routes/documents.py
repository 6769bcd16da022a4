"""Upload, list, show and delete documents."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUploadFile

from app.api.access import ForbiddenError, Principal, PrincipalDep, readable, writable
from app.api.deps import ServicesDep, SettingsDep, SieveDep
from app.api.errors import BadUploadError, UploadTooLargeError, describe_validation
from app.api.schemas import (
    MAX_EXTERNAL_ID_CHARS,
    ChunkOut,
    DeletedDocuments,
    DeleteRequest,
    DocumentDetail,
    DocumentIn,
    DocumentList,
    DocumentOut,
    JobOut,
    UploadResponse,
    uploaded,
)
from app.collection import DocumentNotFoundError
from app.collections import NAME_PATTERN
from app.parsing.common import UNSAFE_INLINE
from app.prepared import Prepared
from app.services import Services
from app.settings import Settings
from app.uploads import JobFile
from index import DocumentRecord

router = APIRouter(prefix="/documents", tags=["documents"])
MAX_NAME_CHARS = 255
MAX_OFFSET = 2**31  # SQLite refuses integers past 2**63 (a 500 if passed through)

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
                        },
                        "collection": {"type": "string", "pattern": NAME_PATTERN},
                        "external_id": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": MAX_EXTERNAL_ID_CHARS},
                            "description": "One per file, in order (optional): uploading an "
                            "id again replaces its document.",
                        },
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
    responses={
        202: {"model": JobOut, "description": "With wait=false: the job, queued."},
        400: {},
        403: {},
        404: {},
        409: {},
        413: {},
        415: {},
        422: {},
        503: {},
    },
)
async def upload_documents(
    request: Request,
    services: ServicesDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    collection: str | None = Query(
        None, pattern=NAME_PATTERN, description="Target collection (or a `collection` field)."
    ),
    wait: bool = Query(
        True,
        description="Answer when the documents are indexed (201); false: at once with the "
        "queued job (202, poll GET /jobs/{id}). A waiting upload answers 202 too once "
        "SIEVE_UPLOAD_WAIT_S pass.",
    ),
) -> Any:
    """The caller's right to write is checked before a byte of the body is read. Then every
    file is read and checked (4xx, nothing stored, when one is bad), within limits on size,
    extracted text and chunks; then the upload becomes a persisted ingestion job (it survives a
    restart) that stores all its documents or none. A file with an external id replaces the
    document stored under that id, atomically."""
    content_type = request.headers.get("content-type", "").lower()
    declared = request.headers.get("content-length", "")
    max_request = int(settings.max_request_mb * 1024 * 1024)
    _authorise_upload(services, principal, collection)  # 403 before any parsing
    if declared.isdigit() and int(declared) > max_request:  # refuse before reading the body
        raise UploadTooLargeError(f"request is {declared} bytes, limit is {max_request}")
    with services.uploads.slot():  # 503 past max_pending_uploads, before the body is read
        upload, name, documents = await _read_and_check(
            request, services, settings, principal, collection, content_type
        )
    job = await to_thread.run_sync(  # up to max_request_mb of BLOBs into SQLite: off the loop
        services.jobs.submit, name, principal.name, upload.files, wait, documents
    )
    del upload, documents  # stored with the job: not kept in memory while it waits
    if wait:
        finished, error = await services.jobs.wait_async(job.id, settings.upload_wait_s)
        if error is not None:
            raise error  # mapped to its 4xx/5xx like any other (e.g. 409 for a content conflict)
        if finished is not None and finished.status == "done" and finished.result is not None:
            return UploadResponse(documents=uploaded(finished.result), job=job.id)
        if finished is not None and finished.status == "failed":
            raise RuntimeError(f"ingestion job {job.id} failed: {finished.error}")
        job = finished or job  # still queued or running: answer like wait=false
    return JSONResponse(
        JobOut.of(job).model_dump(), status_code=202, headers={"Location": f"/jobs/{job.id}"}
    )


async def _read_and_check(
    request: Request,
    services: Services,
    settings: Settings,
    principal: Principal,
    collection: str | None,
    content_type: str,
) -> tuple[_Upload, str, list[Prepared]]:
    """The upload's files as sent, the collection it goes to, and its prepared documents."""
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    media = content_type.split(";", 1)[0].strip()
    if media == "application/json":
        upload = await _json_document(request, services, max_bytes)
    elif media == "multipart/form-data":
        upload = await _multipart_documents(request, max_bytes, settings.max_files_per_upload)
    else:
        raise BadUploadError(
            f"content type {content_type or 'missing'!r} not supported: send multipart/form-data"
            " with one or more `files`, or application/json {title, text}"
        )
    if collection and upload.collection and collection != upload.collection:
        raise BadUploadError(
            f"collection {collection!r} in the query but {upload.collection!r} in the body"
        )
    name = writable(services, principal, collection or upload.collection)  # before parsing
    documents = await services.uploads.check(upload.files)  # 4xx for a bad or too big file
    return upload, name, documents


def _authorise_upload(services: Services, principal: Principal, requested: str | None) -> None:
    """Refuse a caller who may not write before the body is read: one that may write nowhere
    (a read key), or not the collection the query names. A collection named in the body is
    checked once the body is read, and still before any file is parsed."""
    if requested is not None:
        writable(services, principal, requested)
    elif principal.key is not None and not any(
        principal.key.can_write(c) for c in principal.key.collections
    ):
        raise ForbiddenError("this key may not write any collection (it is a read key)")


@dataclass(frozen=True)
class _Upload:
    files: list[JobFile]  # as sent: what the job stores (checked before it is submitted)
    collection: str | None


async def _json_document(request: Request, services: Services, max_bytes: int) -> _Upload:
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():  # stop at the limit instead of buffering the body first
        size += len(part)
        if size > max_bytes:
            raise UploadTooLargeError(f"request body is over the {max_bytes}-byte limit")
        parts.append(part)
    body = b"".join(parts)
    del parts
    try:
        doc = DocumentIn.model_validate(await services.uploads.decode_json(body))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            raise BadUploadError(f"invalid document: {describe_validation(exc.errors())}") from exc
        raise BadUploadError(f"request body is not valid UTF-8 JSON: {exc}") from exc
    stored = {"title": doc.title, "text": doc.text, "format": doc.format, "metadata": doc.metadata}
    file = JobFile("json", "json", json.dumps(stored).encode(), None, doc.external_id)
    return _Upload([file], doc.collection)


async def _multipart_documents(request: Request, max_bytes: int, max_files: int) -> _Upload:
    try:
        form = await request.form(max_files=max_files, max_fields=max_files + 16)
    except HTTPException as exc:  # starlette's own refusals: too many files or fields
        raise BadUploadError(f"{exc.detail} (at most {max_files} files per upload)") from exc
    uploads = [
        v
        for k, v in form.multi_items()
        if k in ("files", "file") and isinstance(v, StarletteUploadFile)
    ]
    if not uploads:
        raise BadUploadError("no files in the upload: send them in the multipart field `files`")
    if any(
        not isinstance(v, str) for k, v in form.multi_items() if k in ("external_id", "collection")
    ):
        raise BadUploadError("external_id and collection are text fields, not files")
    external = [str(v).strip() for k, v in form.multi_items() if k == "external_id"]
    if external and len(external) != len(uploads):
        raise BadUploadError(
            f"{len(external)} external_id fields for {len(uploads)} files: give one per file"
        )
    if any(not e or len(e) > MAX_EXTERNAL_ID_CHARS for e in external):
        raise BadUploadError(f"an external_id is empty or over {MAX_EXTERNAL_ID_CHARS} chars")
    if any(UNSAFE_INLINE.search(e) for e in external):
        raise BadUploadError("an external_id holds control or bidi-override characters")
    if len(set(external)) != len(external):
        raise BadUploadError("the same external_id twice in one upload")
    named = [str(v) for k, v in form.multi_items() if k == "collection"]
    if len(named) > 1 or (named and not re.fullmatch(NAME_PATTERN, named[0])):
        raise BadUploadError("give one valid `collection` field at most")
    files: list[JobFile] = []
    ids: list[str | None] = list(external) or [None] * len(uploads)
    for upload, external_id in zip(uploads, ids, strict=True):
        name = _safe_name(upload)
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UploadTooLargeError(f"{name} is larger than the {max_bytes}-byte limit")
        files.append(JobFile("file", name, data, upload.content_type, external_id))
    await form.close()
    return _Upload(files, named[0] if named else None)


def _safe_name(upload: StarletteUploadFile) -> str:
    """Only the base name of what the client sent; it is a label, never a path we open.

    Control characters (NUL, newlines) are dropped, ``.``/``..`` become ``upload`` and the name
    is cut to MAX_NAME_CHARS, keeping its extension (the format is detected from it)."""
    raw = UNSAFE_INLINE.sub("", upload.filename or "")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        return "upload"
    if len(base) > MAX_NAME_CHARS:
        _, dot, extension = base.rpartition(".")
        keep = f"{dot}{extension}" if dot and len(extension) <= 10 else ""
        base = base[: MAX_NAME_CHARS - len(keep)] + keep
    return base


@router.get("", response_model=DocumentList, responses={403: {}, 404: {}})
def list_documents(
    services: ServicesDep,
    principal: PrincipalDep,
    collection: str | None = Query(None, pattern=NAME_PATTERN),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> DocumentList:
    name = readable(services, principal, collection)
    store = services.collections.store
    return DocumentList(
        total=store.count_documents(name),
        documents=[DocumentOut.of(r) for r in store.list_documents(limit, offset, name)],
    )


def _visible(
    services: ServicesDep, principal: Principal, document_id: str, write: bool
) -> DocumentRecord:
    """The document if the caller may see it (write: change it). "Not found" whether or not it
    exists in a collection the caller may not read; 403 for a write with read rights only."""
    record = services.collections.store.get_document(document_id)
    if record is None or not principal.can(record.collection, write=False):
        raise DocumentNotFoundError(document_id)
    if write and not principal.can(record.collection, write=True):
        raise ForbiddenError(f"this key may not write collection {record.collection!r}")
    return record


@router.get("/{document_id}", response_model=DocumentDetail, responses={404: {}})
def get_document(
    document_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    chunk_limit: int = Query(
        100, ge=0, le=1000, description="Chunks in this page (the document's text is whole)."
    ),
    chunk_offset: int = Query(0, ge=0, le=MAX_OFFSET, description="First chunk of the page."),
    text: bool = Query(True, description="false: leave the document's text out."),
) -> DocumentDetail:
    """The document with one page of its chunks (``chunk_count`` says how many there are): a
    long document never becomes one response of all its chunks."""
    record = _visible(services, principal, document_id, write=False)
    store = services.collections.store
    return DocumentDetail(
        **DocumentOut.of(record).model_dump(),
        text=(store.get_text(document_id) or "") if text else "",
        chunk_offset=chunk_offset,
        chunks=[ChunkOut.of(c) for c in store.chunks_of(document_id, chunk_limit, chunk_offset)],
    )


@router.delete("/{document_id}", status_code=204, responses={404: {}})
def delete_document(
    document_id: str, services: ServicesDep, sieve: SieveDep, principal: PrincipalDep
) -> Response:
    record = _visible(services, principal, document_id, write=True)
    sieve.delete(record.collection, [document_id])
    return Response(status_code=204)


@router.post("/delete", response_model=DeletedDocuments, responses={404: {}, 422: {}})
def delete_documents(
    body: DeleteRequest, services: ServicesDep, sieve: SieveDep, principal: PrincipalDep
) -> DeletedDocuments:
    """Delete several documents of one collection at once, all or nothing: one SQLite
    transaction and one pass over FAISS, BM25 and the knowledge graph; 404 (nothing deleted)
    if any id is unknown."""
    records = [_visible(services, principal, i, write=True) for i in dict.fromkeys(body.ids)]
    collections = {r.collection for r in records}
    if len(collections) > 1:
        raise BadUploadError("ids from several collections: delete one collection's at a time")
    return DeletedDocuments(deleted=[r.id for r in sieve.delete(collections.pop(), body.ids)])
