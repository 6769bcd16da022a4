"""The entry points of parsing: an uploaded file, or raw text sent as JSON, to a ParsedDocument.

``parse_document`` detects the format (see ``detect``), checks the bytes really are that format,
and hands them to the one parser for it. Every failure is a ``ParseError`` whose message names
the file and says what is wrong, so the API can show it to the user as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from app.parsing.common import check_text, clean_inline, decode_utf8, display_name
from app.parsing.detect import detect_format, verify_content
from app.parsing.docx import parse_docx
from app.parsing.html import decode_html, parse_html
from app.parsing.limits import DEFAULT_LIMITS, ExtractionLimits
from app.parsing.markdown import parse_markdown
from app.parsing.pdf import parse_pdf
from app.parsing.text import parse_txt
from app.parsing.types import ParsedDocument, UnsupportedFormatError

_TEXT_PARSERS: dict[str, Callable[[str, str], ParsedDocument]] = {
    "txt": parse_txt,
    "md": parse_markdown,
    "html": parse_html,
}
_TEXT_FORMAT_NAMES = {
    "txt": "txt",
    "text": "txt",
    "md": "md",
    "markdown": "md",
    "html": "html",
    "htm": "html",
}


# markup around the text of an HTML page: its source may be this many times the text limit
HTML_MARKUP_FACTOR = 4


def parse_document(
    data: bytes,
    filename: str,
    content_type: str | None = None,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> ParsedDocument:
    """Parse an uploaded file; ``metadata["filename"]`` records the name it came with.
    Raises ``ExtractionLimitError`` as soon as the document passes one of ``limits``."""
    fmt = detect_format(data, filename, content_type)
    name = display_name(filename)
    verify_content(fmt, data, name)
    if fmt == "pdf":
        doc = parse_pdf(data, name, limits)
    elif fmt == "docx":
        doc = parse_docx(data, name, limits)
    elif fmt == "html":
        markup = decode_html(data, name)
        limits.check_chars(len(markup) // HTML_MARKUP_FACTOR, name)
        doc = parse_html(markup, name)
        limits.check_text(doc.text, name)
    else:
        text = decode_utf8(data, name)
        limits.check_text(text, name)
        doc = _TEXT_PARSERS[fmt](text, name)
    return dataclasses.replace(doc, metadata={"filename": clean_inline(filename), **doc.metadata})


def parse_text(
    title: str, text: str, fmt: str = "txt", limits: ExtractionLimits = DEFAULT_LIMITS
) -> ParsedDocument:
    """Parse text sent directly (no file); a non-blank ``title`` overrides the derived one."""
    name = clean_inline(title) or "text"
    key = _TEXT_FORMAT_NAMES.get(fmt.strip().lower().lstrip("."))
    if key is None:
        raise UnsupportedFormatError(
            f"unsupported text format '{fmt}' for '{name}'; supported: txt, md, html"
        )
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    check_text(text, name)
    limits.check_text(text, name)
    doc = _TEXT_PARSERS[key](text, name)
    return dataclasses.replace(doc, title=clean_inline(title) or doc.title)
