"""Word .docx (python-docx): paragraphs and tables in document order, headings open sections.

Paragraph styles decide the structure: "Title" is the top of the heading stack, "Heading 1" to
"Heading 9" nest below it. Ordinary paragraphs are separated by a blank line, list paragraphs are
prefixed with ``- `` and kept on consecutive lines, table rows become ``cell | cell`` lines.
Content controls (``w:sdt``) are opened so their paragraphs are not lost.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph

from app.parsing.common import TextBuilder, clean_inline, file_stem, finish
from app.parsing.limits import DEFAULT_LIMITS, ExtractionLimits
from app.parsing.types import ParsedDocument, ParseError

logger = logging.getLogger(__name__)

_P, _TBL, _SDT, _SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
_TR, _TC, _PPR, _NUMPR = qn("w:tr"), qn("w:tc"), qn("w:pPr"), qn("w:numPr")
_HEADING_STYLE = re.compile(r"heading ([1-9])", re.IGNORECASE)


def parse_docx(data: bytes, name: str, limits: ExtractionLimits = DEFAULT_LIMITS) -> ParsedDocument:
    """``data`` is a zip holding ``word/document.xml`` (checked by the caller). The body is
    walked paragraph by paragraph and the walk stops once ``limits`` are passed."""
    out = TextBuilder()
    try:
        _precount(data, name, limits)  # before python-docx builds the whole tree in memory
        document = Document(io.BytesIO(data))
        titles = _render(document, out, _Budget(limits, name))
        core_title = clean_inline(document.core_properties.title or "")
        author = clean_inline(document.core_properties.author or "")
    except ParseError:
        raise
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own types
        logger.info("python-docx could not read %r: %r", name, exc)
        raise ParseError(f"'{name}' is not a readable .docx file (corrupt: {exc})") from exc
    text, sections = out.build()
    title = core_title or titles.get("title") or titles.get("heading") or file_stem(name)
    return finish(name, "docx", title, text, sections, {"author": author} if author else None)


def _precount(data: bytes, name: str, limits: ExtractionLimits) -> None:
    """Count paragraph and table-row tags in the raw body XML (a C-speed byte count; the size of
    the unpacked body is already bounded by ``detect``): a 100 KB file of a million empty
    paragraphs is refused before lxml spends half a gigabyte on its tree."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        body = archive.read("word/document.xml")
    blocks = sum(body.count(tag) for tag in (b"<w:p>", b"<w:p ", b"<w:tr>", b"<w:tr "))
    del body
    limits.check_paragraphs(blocks, name)


class _Budget:
    """Counts paragraphs (and table rows) and characters written, against the limits."""

    def __init__(self, limits: ExtractionLimits, name: str) -> None:
        self.limits, self.name = limits, name
        self.blocks = 0

    def spend(self, out: TextBuilder) -> None:
        self.blocks += 1
        self.limits.check_paragraphs(self.blocks, self.name)
        self.limits.check_chars(out.length, self.name)


def _render(document: Any, out: TextBuilder, budget: _Budget) -> dict[str, str]:
    """Write the body into ``out``; returns the first "title" and "heading" paragraph texts."""
    titles: dict[str, str] = {}
    styles: dict[str | None, str] = {}  # style id -> name: python-docx's lookup scans every style
    stack = list(reversed(list(document.element.body.iterchildren())))
    while stack:  # a stack, not recursion: content controls may nest
        element = stack.pop()
        budget.spend(out)
        if element.tag == _P:
            _paragraph(element, document, out, titles, styles)
        elif element.tag == _TBL:
            _table(element, document, out, budget)
        elif element.tag == _SDT:
            content = element.find(_SDT_CONTENT)
            if content is not None:
                stack.extend(reversed(list(content.iterchildren())))
    return titles


def _paragraph(
    element: Any,
    document: Any,
    out: TextBuilder,
    titles: dict[str, str],
    styles: dict[str | None, str],
) -> None:
    text = Paragraph(element, document).text.strip()
    if not text:
        return
    style_name = _style_name(element.style, document, styles)
    heading = _HEADING_STYLE.fullmatch(style_name)
    if style_name.lower() == "title" or heading is not None:
        out.heading(int(heading.group(1)) if heading else 0, text)
        titles.setdefault("heading" if heading else "title", clean_inline(text))
    elif _is_list_item(element, style_name):
        out.request_break(1)
        out.write("- " + text)
        out.request_break(1)
    else:
        out.request_break(2)
        out.write(text)
        out.request_break(2)


def _style_name(style_id: str | None, document: Any, styles: dict[str | None, str]) -> str:
    """The name of a paragraph style (the default one when ``style_id`` is None), cached."""
    if style_id not in styles:
        style = document.part.get_style(style_id, WD_STYLE_TYPE.PARAGRAPH)
        styles[style_id] = (style.name or "") if style is not None else ""
    return styles[style_id]


def _is_list_item(element: Any, style_name: str) -> bool:
    properties = element.find(_PPR)
    numbered = properties is not None and properties.find(_NUMPR) is not None
    return numbered or style_name.lower().startswith("list")


def _table(table: Any, document: Any, out: TextBuilder, budget: _Budget) -> None:
    """One line per row; a cell's paragraphs (and nested tables) are flattened to its text."""
    out.request_break(2)
    for row in table.iterchildren(_TR):
        budget.spend(out)
        cells = [
            clean_inline(" ".join(Paragraph(p, document).text for p in cell.iter(_P)))
            for cell in row.iterchildren(_TC)
        ]
        if any(cells):
            out.write(" | ".join(cells).strip())
            out.request_break(1)
    out.request_break(2)
