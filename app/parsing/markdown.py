"""Markdown: the decoded source is the document text; its headings open the sections.

Only the block structure that decides sections is recognised: ATX (``## x``) and setext
(``x`` over ``---``) headings, fenced code (whose lines are never headings) and YAML front matter
(kept in the text, but in no section, so it is not indexed). Everything else, inline markup and
tables included, stays in the text as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.parsing.common import (
    MAX_HEADING_CHARS,
    HeadingStack,
    RawRange,
    clean_inline,
    file_stem,
    finish,
    make_sections,
)
from app.parsing.types import ParsedDocument

_ATX = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# Lines that are not paragraph text, so a setext underline below them is no heading.
_NOT_PARAGRAPH = re.compile(r" {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|[>|])| {4}|\t")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_ANCHOR = re.compile(r"\s*\{#[^}\n]*\}\s*$")
_FRONT_MATTER_MAX_LINES = 100


def parse_markdown(text: str, name: str) -> ParsedDocument:
    """``text`` is already decoded and newline-normalised; it is kept exactly."""
    ranges, title = _scan(text)
    return finish(name, "md", title or file_stem(name), text, make_sections(text, ranges))


def _scan(text: str) -> tuple[list[RawRange], str | None]:
    """Section ranges (untrimmed) and the first h1, in one pass over the lines."""
    headings = HeadingStack()
    ranges: list[RawRange] = []
    path: tuple[str, ...] = ()
    title: str | None = None
    body_start = _front_matter_end(text)
    fence: tuple[str, int] | None = None
    para: tuple[int, int] | None = None  # the open paragraph, a setext heading's candidate text
    for start, end in _lines(text, body_start):
        line = text[start:end]
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            continue
        fence = _opens_fence(line)
        if fence is not None:
            para = None
            continue
        atx = _ATX.match(line)
        setext = _SETEXT.match(line) if para is not None and atx is None else None
        if atx is not None:
            level, raw, head_start = len(atx.group(1)), _atx_text(line[atx.end() :]), start
        elif setext is not None and para is not None:
            level = 1 if setext.group(1)[0] == "=" else 2
            raw, head_start = text[para[0] : para[1]], para[0]
        else:
            is_text = bool(line.strip()) and _NOT_PARAGRAPH.match(line) is None
            para = ((para[0] if para else start), end) if is_text else None
            continue
        ranges.append((path, body_start, head_start, None))
        label = _clean_heading(raw)
        path = headings.push(level, label)
        if level == 1 and label and title is None:
            title = label
        body_start, para = end, None
    ranges.append((path, body_start, len(text), None))
    return ranges, title


def _lines(text: str, pos: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line from ``pos``; ``end`` excludes the newline."""
    while pos <= len(text):
        newline = text.find("\n", pos)
        end = len(text) if newline < 0 else newline
        yield pos, end
        pos = end + 1


def _front_matter_end(text: str) -> int:
    """Offset just past a leading ``---`` ... ``---`` YAML block, or 0 when there is none."""
    lines = _lines(text, 0)
    first = next(lines)
    if text[first[0] : first[1]].rstrip() != "---":
        return 0
    for count, (start, end) in enumerate(lines):
        if count >= _FRONT_MATTER_MAX_LINES:
            break
        if text[start:end].rstrip() in ("---", "..."):
            return end
    return 0


def _opens_fence(line: str) -> tuple[str, int] | None:
    match = _FENCE.match(line)
    if match is None:
        return None
    marker = match.group(1)
    if marker[0] == "`" and "`" in line[match.end() :]:
        return None  # a backtick fence's info string cannot hold backticks (inline code)
    return marker[0], len(marker)


def _closes_fence(line: str, fence: tuple[str, int]) -> bool:
    core = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    char, length = fence
    return indent <= 3 and len(core) >= length and core == char * len(core)


def _atx_text(rest: str) -> str:
    """The heading text after the ``#`` run, without an optional closing ``#`` sequence."""
    rest = rest.strip()
    bare = rest.rstrip("#")
    if not bare:
        return ""
    if bare != rest and bare[-1] in " \t":
        return bare.rstrip()
    return rest


def _clean_heading(raw: str) -> str:
    """Heading text as a reader sees it: links reduced to their text, code/bold marks dropped."""
    text = raw[: MAX_HEADING_CHARS * 5]  # bounds the regex work on absurd lines
    text = _LINK.sub(r"\1", text)
    text = _ANCHOR.sub("", text)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    return clean_inline(text, MAX_HEADING_CHARS)
