"""Which format an upload is: by extension, then content type, then a look at the bytes.

The claimed type is always checked against the content, so a renamed file fails with a clear
message instead of deep inside a parser. A file that nothing names (no extension, a number
such as "Apache-2.0" or "ls.1", or a plain-text one such as .rst, .json or .csv, whatever
content type the client guessed for it) is read as plain text when its bytes look like text:
LICENSE, README and man pages are documents too.
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
# extensions of plain-text files read as txt when their bytes are text (besides none at all and
# numbers: "Apache-2.0", "ls.1"); binary or rich formats (.doc, .rtf, .odt) stay unsupported
PLAIN_TEXT_EXTENSIONS = frozenset(
    {
        ".rst", ".adoc", ".asciidoc", ".org", ".log", ".csv", ".tsv", ".json", ".jsonl",
        ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml", ".tex", ".man", ".me",
    }
)  # fmt: skip
_TEXT_PEEK_BYTES = 65536
# Zip bombs are refused before python-docx inflates them: it holds every part in memory and
# parses the body at ~30 µs per paragraph, so these bound a docx to ~0.5 GB and ~15 s.
MAX_DOCX_UNZIPPED_BYTES = 128 * 1024 * 1024
MAX_DOCX_BODY_BYTES = 32 * 1024 * 1024  # word/document.xml of a 1500-page report is ~15 MB
_DOCX_BODY = "word/document.xml"
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError)  # what zipfile raises on junk
# Signatures of binary formats people upload by mistake: a text file must not start with one.
_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office (OLE2) file: .doc, .xls or .ppt"),
)
_TEXT_FORMATS = frozenset({"txt", "md", "html"})


def detect_format(data: bytes, filename: str, content_type: str | None = None) -> str:
    """``"txt" | "md" | "html" | "pdf" | "docx"``; raises UnsupportedFormatError otherwise."""
    extension = _extension(filename)
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in CONTENT_TYPES:
        return CONTENT_TYPES[mime]
    if plain_text_name(filename):
        sniffed = _sniff(data)
        if sniffed is not None:
            return sniffed
        if looks_like_text(data):  # UTF-8 is checked when it is read (422 with the offset)
            return "txt"
    claimed = extension or mime or "unknown"
    kind = binary_kind(data)
    found = f" (it is {kind})" if kind is not None else ""
    raise UnsupportedFormatError(
        f"unsupported file type '{claimed}' for '{display_name(filename)}'{found}; "
        f"supported: {SUPPORTED}"
    )


def verify_content(fmt: str, data: bytes, name: str) -> None:
    """Raise ParseError when the bytes are empty or plainly not the format that was claimed."""
    if not data:
        raise ParseError(f"'{name}' is empty (0 bytes)")
    if not data.strip():
        raise ParseError(f"'{name}' is empty: it contains only whitespace")
    magic = binary_kind(data)
    if fmt in _TEXT_FORMATS and magic is not None:
        raise UnsupportedFormatError(
            f"'{name}' is {magic}, not {fmt} text (checked by content, not by its name)"
        )
    if fmt == "pdf" and not _is_pdf(data):
        found = f"; it is {magic}" if magic is not None else ""
        raise ParseError(f"'{name}' is not a PDF (it does not start with '%PDF-'{found})")
    if fmt == "docx":
        _verify_docx(data, name)


def binary_kind(data: bytes) -> str | None:
    """What a known binary signature at the start of ``data`` says the file is, else None."""
    head = data[:1024].lstrip()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _extension(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def plain_text_name(filename: str) -> bool:
    """Whether a file of this name is read as plain text when its bytes are text: no
    extension, a number ("Apache-2.0", "ls.1"), or one of PLAIN_TEXT_EXTENSIONS."""
    extension = _extension(filename)
    return not extension or extension[1:].isdigit() or extension in PLAIN_TEXT_EXTENSIONS


def looks_like_text(data: bytes) -> bool:
    """Whether the start of ``data`` may be text: no NUL byte and no binary signature (its
    encoding is checked when it is read: not UTF-8 is a 422 that says so)."""
    head = data[:_TEXT_PEEK_BYTES]
    return b"\x00" not in head and binary_kind(head) is None


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
    body = next((info for info in infos if info.filename == _DOCX_BODY), None)
    if body is None:
        raise ParseError(f"'{name}' is a zip archive but not a Word .docx (no {_DOCX_BODY})")
    if body.file_size > MAX_DOCX_BODY_BYTES:  # zipfile never inflates past file_size
        raise ParseError(
            f"'{name}' has a {body.file_size}-byte {_DOCX_BODY}, over the "
            f"{MAX_DOCX_BODY_BYTES}-byte limit (a zip bomb, or split the document)"
        )
    unzipped = sum(info.file_size for info in infos)
    if unzipped > MAX_DOCX_UNZIPPED_BYTES:
        raise ParseError(
            f"'{name}' unpacks to {unzipped} bytes, over the {MAX_DOCX_UNZIPPED_BYTES}-byte limit"
        )
