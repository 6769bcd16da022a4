"""PDF: the text layer of each page (pypdf), one section per page.

Pages are joined by a blank line; a page without text (a scanned image) contributes nothing.
There is no OCR: a PDF with no text layer at all is refused with a message saying so.
"""

from __future__ import annotations

import io
import logging
import re

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from app.parsing.common import TextBuilder, clean_inline, file_stem, finish, first_line_title
from app.parsing.limits import DEFAULT_LIMITS, ExtractionLimits
from app.parsing.types import ParsedDocument, ParseError

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_pdf(data: bytes, name: str, limits: ExtractionLimits = DEFAULT_LIMITS) -> ParsedDocument:
    """``data`` starts with ``%PDF-`` (checked by the caller). Pages are read one by one and
    the reading stops as soon as the page count or the text extracted so far passes
    ``limits`` (a single page can still be slow: run untrusted PDFs in ``parse_isolated``)."""
    pages, meta_title, author = _read(data, name, limits)
    out = TextBuilder()
    for number, page_text in enumerate(pages, start=1):
        out.start_section((f"Page {number}",), page=number)
        out.request_break(2)
        out.write(page_text)
    text, sections = out.build()
    if not sections:
        raise ParseError(
            f"'{name}' has no extractable text ({len(pages)} pages, no text layer; "
            "is it a scanned image? run OCR on it first)"
        )
    title = meta_title or first_line_title(text) or file_stem(name)
    metadata = {"pages": str(len(pages))}
    if author:
        metadata["author"] = author
    return finish(name, "pdf", title, text, sections, metadata)


def _read(data: bytes, name: str, limits: ExtractionLimits) -> tuple[list[str], str, str]:
    """Page texts, metadata title and author; any failure of pypdf becomes a ParseError."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _decrypt(reader, name)
        limits.check_pages(len(reader.pages), name)
        pages: list[str] = []
        chars = 0
        for page in reader.pages:
            pages.append(_clean(page.extract_text() or ""))
            chars += len(pages[-1])
            limits.check_chars(chars, name)
        info = reader.metadata
        title = clean_inline(str(info.title or "")) if info is not None else ""
        author = clean_inline(str(info.author or "")) if info is not None else ""
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types (KeyError, ValueError, ...) on bad input
        logger.info("pypdf could not read %r: %r", name, exc)
        raise ParseError(f"'{name}' is not a readable PDF (corrupt or truncated: {exc})") from exc
    return pages, title, author


def _decrypt(reader: PdfReader, name: str) -> None:
    """Open PDFs that only have an owner password (no password to read); refuse the rest."""
    refused = ParseError(f"'{name}' is encrypted (password-protected); upload an unencrypted copy")
    try:
        result = reader.decrypt("")
    except DependencyError:  # AES needs an optional crypto package we do not ship
        raise refused from None
    if result == PasswordType.NOT_DECRYPTED:
        raise refused


def _clean(page_text: str) -> str:
    text = page_text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()
