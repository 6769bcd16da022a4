"""Plain text: the decoded upload is the document, one section covering all of it."""

from __future__ import annotations

from app.parsing.common import file_stem, finish, first_line_title, make_sections
from app.parsing.types import ParsedDocument


def parse_txt(text: str, name: str) -> ParsedDocument:
    """``text`` is already decoded and newline-normalised; it is kept exactly."""
    title = first_line_title(text) or file_stem(name)
    sections = make_sections(text, [((), 0, len(text), None)])
    return finish(name, "txt", title, text, sections)
