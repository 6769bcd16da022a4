"""HTML: visible body text, minus page furniture, with h1–h6 opening the sections.

The document text is rebuilt from the tree: every heading on its own line, paragraphs separated
by a blank line, other blocks (div, li, br, dt/dd, ...) by a line break, list items prefixed with
``- `` or ``1. ``, table rows as ``cell | cell``. The walk keeps its own stack instead of
recursing, so arbitrarily deep markup cannot exhaust the Python stack.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString

from app.parsing.common import (
    MAX_HEADING_CHARS,
    TextBuilder,
    check_text,
    clean_inline,
    decode_utf8,
    file_stem,
    finish,
    normalize_newlines,
)
from app.parsing.types import ParsedDocument

_DROP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "template",
        "svg",
        "iframe",
        "head",
    }
)
_HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
_PARAGRAPH_LIKE = (
    "p",
    "blockquote",
    "table",
    "dl",
    "figure",
    "hr",
    "section",
    "article",
    "main",
    "address",
    "details",
    "fieldset",
)
_LINE_LIKE = (
    "div",
    "dt",
    "dd",
    "caption",
    "figcaption",
    "summary",
    "center",
    "legend",
    "body",
    "html",
    "tbody",
    "thead",
    "tfoot",
)
# 2: a blank line around the element, 1: a line break
_BREAK_LEVEL = {**dict.fromkeys(_PARAGRAPH_LIKE, 2), **dict.fromkeys(_LINE_LIKE, 1)}
# Inside a heading or a table cell these only separate words.
_ANY_BLOCK = frozenset(_BREAK_LEVEL) | _HEADINGS | {"br", "li", "ul", "ol", "pre", "tr", "td", "th"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)


def decode_html(data: bytes, name: str) -> str:
    """UTF-8 when the bytes are UTF-8; else the charset a ``<meta>`` declares (windows-1252...)."""
    declared = _META_CHARSET.search(data[:4096])
    if declared is None or b"\x00" in data or _is_utf8(data):
        return decode_utf8(data, name)
    try:
        text = data.decode(declared.group(1).decode("ascii"))
    except (LookupError, UnicodeDecodeError):
        return decode_utf8(data, name)  # raises the UTF-8 error, the clearest message
    text = normalize_newlines(text)
    check_text(text, name)
    return text


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_html(text: str, name: str) -> ParsedDocument:
    """``text`` is decoded markup; the document text is what a reader of the page would see."""
    soup = BeautifulSoup(text, "lxml")
    walker = _Walker()
    walker.run(soup)
    body, sections = walker.out.build()
    title_tag = soup.head.find("title") if soup.head is not None else None  # not an <svg> title
    page_title = clean_inline(title_tag.get_text()) if title_tag is not None else ""
    title = page_title or walker.first_h1 or file_stem(name)
    return finish(name, "html", title, body, sections)


class _Walker:
    """Turns the element tree into ``TextBuilder`` calls, one element at a time."""

    def __init__(self) -> None:
        self.out = TextBuilder()
        self.first_h1: str | None = None
        self._line: list[str] = []  # text of the block being collected
        self._cell: list[str] | None = None  # text of the open table cell
        self._row: list[str] | None = None  # finished cells of the open table row
        self._heading: int | None = None  # level of the open heading
        self._pre = 0  # depth of <pre>: whitespace is kept inside
        self._lists: list[str] = []  # "ul" / "ol" per open list
        self._counts: list[int] = []  # items so far per open list
        self._prefix = ""  # list marker waiting for the item's first text

    def run(self, root: Tag) -> None:
        stack: list[tuple[PageElement, str | None]] = [(c, None) for c in reversed(root.contents)]
        while stack:
            node, leaving = stack.pop()
            if leaving is not None:
                self._leave(leaving)
            elif isinstance(node, Tag):
                action = self._enter(node)
                if action == "skip":
                    continue
                if action is not None:
                    stack.append((node, action))
                stack.extend((child, None) for child in reversed(node.contents))
            elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
                self._text(str(node))  # PreformattedString: comments, doctype, CDATA
        self._flush(0)

    def _enter(self, tag: Tag) -> str | None:
        """Handle an opening tag; returns what to do when it closes ("skip": ignore it)."""
        name = tag.name
        if name in _DROP or str(tag.get("role") or "").lower() == "navigation":
            return "skip"
        if self._heading is not None or self._cell is not None:
            if name in _ANY_BLOCK:
                self._text(" ")  # structure inside a heading or cell collapses to spaces
            return None
        if name in _HEADINGS:
            self._flush(2)
            self._heading = int(name[1])
            return "heading"
        if name == "tr":
            self._flush(1)
            self._row = []
            return "row"
        if name in ("td", "th"):
            self._cell = []
            return "cell"
        if name == "pre":
            self._flush(2)
            self._pre += 1
            return "pre"
        if name == "br":
            if self._pre:
                self._text("\n")
            else:
                self._flush(1)
            return None
        if name in ("ul", "ol"):
            self._flush(1 if self._lists else 2)
            self._lists.append(name)
            self._counts.append(0)
            return "list"
        if name == "li":
            self._flush(1)
            self._prefix = self._next_marker()
            return "item"
        level = _BREAK_LEVEL.get(name)
        if level is not None:
            level = 1 if self._lists else level  # paragraphs inside list items stay compact
            self._flush(level)
            return f"b{level}"
        return None

    def _leave(self, action: str) -> None:
        if action == "heading":
            self._close_heading()
        elif action == "cell":
            cell, self._cell = self._cell or [], None
            if self._row is not None:
                self._row.append(clean_inline("".join(cell)))
            else:
                self._line.extend((" ", *cell, " "))  # a cell outside any row: plain text
        elif action == "row":
            self._close_row()
        elif action == "pre":
            self._flush(2)
            self._pre -= 1
        elif action == "list":
            self._lists.pop()
            self._counts.pop()
            self._flush(1 if self._lists else 2)
        elif action == "item":
            self._flush(1)
            self._prefix = ""  # an item without text leaves no dangling marker
        else:  # "b1" / "b2"
            self._flush(int(action[1]))

    def _text(self, text: str) -> None:
        (self._cell if self._cell is not None else self._line).append(text)

    def _flush(self, level: int) -> None:
        """Write the collected block (if any) and ask for a break of ``level`` after it."""
        raw = "".join(self._line)
        self._line.clear()
        if self._pre:
            lines = [line.rstrip() for line in raw.split("\n")]
            text = "\n".join(lines).strip("\n") if any(lines) else ""
        else:
            text = clean_inline(raw)
        if text:
            self.out.write(self._prefix + text)
            self._prefix = ""
        self.out.request_break(level)

    def _close_heading(self) -> None:
        level, self._heading = self._heading or 1, None
        title = clean_inline("".join(self._line))
        self._line.clear()
        self._prefix = ""
        if title:
            self.out.heading(level, title)
            if level == 1 and self.first_h1 is None:
                self.first_h1 = clean_inline(title, MAX_HEADING_CHARS)

    def _close_row(self) -> None:
        cells, self._row = self._row or [], None
        self._flush(1)  # stray text inside the row but outside its cells
        if any(cells):
            self.out.write(" | ".join(cells).strip())
        self.out.request_break(1)

    def _next_marker(self) -> str:
        if not self._lists or self._lists[-1] != "ol":
            return "- "
        self._counts[-1] += 1
        return f"{self._counts[-1]}. "
