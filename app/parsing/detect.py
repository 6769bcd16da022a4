"""Which format an upload is: by extension, then content type, then a look at the bytes.

The claimed type is always checked against the content, so a renamed file fails with a clear
message instead of deep inside a parser.
"""

from __future__ import annotations

import io
import zipfile

from app.parsing.common import SUPPORTED, display_name
from app.parsing.types import ParseError, UnsupportedFormatError

EXTENSIONS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
CONTENT_TYPES = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
MAX_DOCX_UNZIPPED_BYTES = 512 * 1024 * 1024  # refuses zip bombs before python-docx inflates them
_DOCX_BODY = "word/document.xml"
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError)  # what zipfile raises on junk


def detect_format(data: bytes, filename: str, content_type: str | None = None) -> str:
    """``"txt" | "md" | "html" | "pdf" | "docx"``; raises UnsupportedFormatError otherwise."""
    extension = _extension(filename)
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in CONTENT_TYPES:
        return CONTENT_TYPES[mime]
    if not extension:
        sniffed = _sniff(data)
        if sniffed is not None:
            return sniffed
    claimed = extension or mime or "unknown"
    raise UnsupportedFormatError(
        f"unsupported file type '{claimed}' for '{display_name(filename)}'; supported: {SUPPORTED}"
    )


def verify_content(fmt: str, data: bytes, name: str) -> None:
    """Raise ParseError when the bytes are empty or plainly not the format that was claimed."""
    if not data:
        raise ParseError(f"'{name}' is empty (0 bytes)")
    if not data.strip():
        raise ParseError(f"'{name}' is empty: it contains only whitespace")
    if fmt == "pdf" and not _is_pdf(data):
        raise ParseError(f"'{name}' is not a PDF (it does not start with '%PDF-')")
    if fmt == "docx":
        _verify_docx(data, name)


def _extension(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def _is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def _sniff(data: bytes) -> str | None:
    """Recognise the binary formats by their magic bytes when nothing else says what a file is."""
    if _is_pdf(data):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "docx" if _DOCX_BODY in archive.namelist() else None
        except _ZIP_ERRORS:
            return None
    return None


def _verify_docx(data: bytes, name: str) -> None:
    if not data.startswith(b"PK\x03\x04"):
        raise ParseError(f"'{name}' is not a .docx file (it is not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise ParseError(f"'{name}' is a corrupt .docx file ({exc})") from None
    if _DOCX_BODY not in {info.filename for info in infos}:
        raise ParseError(f"'{name}' is a zip archive but not a Word .docx (no {_DOCX_BODY})")
    unzipped = sum(info.file_size for info in infos)
    if unzipped > MAX_DOCX_UNZIPPED_BYTES:
        raise ParseError(
            f"'{name}' unpacks to {unzipped} bytes, over the {MAX_DOCX_UNZIPPED_BYTES}-byte limit"
        )
