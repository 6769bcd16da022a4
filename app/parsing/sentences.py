"""Rule-based sentence splitting with character offsets: no models, no downloads, linear time.

Pieces are cut in three passes, each only at whitespace (or right after a CJK full stop):

1. blocks: a blank line always ends a sentence;
2. lines: a single newline ends one when the next line starts a list item, table row, heading or
   quote; when the line before is a table row; or when the line before is short (a heading, a
   label), has no final punctuation and the next line starts the way a sentence does. In a
   hard-wrapped block (licences, man pages, mail: lines up to a common width) a line that
   stopped only because the next word would not fit goes on, capital letter or not;
3. sentences: after ``.`` ``!`` ``?`` (plus closing quotes/brackets) followed by whitespace and a
   sentence start (capital, digit, opening quote/bracket), unless the period ends an
   abbreviation ("Dr.", "e.g.", "U.S."), an initial ("J. R. R. Tolkien") or a list number.

Pieces longer than MAX_SENTENCE_CHARS are then cut at whitespace (hard-cut when there is none),
so no model downstream ever sees a giant "sentence". Every scan is a regex or ``str.find`` that
never backtracks, and look-behinds are bounded, so a 5 MB single line splits in well under a
second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.parsing.common import trim
from app.parsing.types import Span

MAX_SENTENCE_CHARS = 1000
SHORT_LINE_CHARS = 80  # a line shorter than this without final punctuation may be a heading
MIN_WRAP_WIDTH = 50  # blocks whose longest line is shorter are lists or verse, not wrapped prose
WRAP_SLACK = 8  # wrappers differ (hanging indents, fill columns): "did not fit" within this much

_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_TERMINAL = re.compile(r"[.!?…。！？]+[\"'”’»)\]}]*")
_CLOSERS = "\"'”’»)]}"
_NON_SPACE = re.compile(r"\S")
_LINE_OPENER = re.compile(r"(?:[-*+•–—]|\d{1,3}[.)])\s|[|#>]")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S, e.g, i.e, a.m
_OPENERS = frozenset("\"'“‘«([{¿¡")
_CONTINUES = frozenset(",;:-–—(/&+=")  # a line ending in one of these goes on below
_FULLWIDTH_STOPS = frozenset("。！？")
_CUT_CHARS = (" ", "\n", "\t", "\u00a0", "\u3000")
_TOKEN_WINDOW = 40  # longest word we look back at for an abbreviation

_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "messrs",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "rev",
        "hon",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "mt",
        "ft",
        "vs",
        "etc",
        "al",
        "approx",
        "ca",
        "cf",
        "viz",
        "esp",
        "incl",
        "inc",
        "ltd",
        "co",
        "corp",
        "bros",
        "dept",
        "univ",
        "assn",
        "govt",
        "est",
        "ph.d",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_NUMBER_ABBREVIATIONS = frozenset(  # abbreviations only when a number follows
    {
        "no",
        "nos",
        "fig",
        "figs",
        "p",
        "pp",
        "vol",
        "vols",
        "eq",
        "eqs",
        "ch",
        "sec",
        "art",
        "ref",
        "op",
    }
)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of ``text[start:end]`` as spans into ``text``, in order, trimmed, non-empty.

    Every non-whitespace character of the range lies in exactly one span.
    """
    return list(iter_sentences(text, start, end))


def iter_sentences(text: str, start: int = 0, end: int | None = None) -> Iterator[Span]:
    """:func:`split_sentences` one sentence at a time (a caller with a limit stops early)."""
    stop = len(text) if end is None else end
    if not 0 <= start <= stop <= len(text):
        raise ValueError(
            f"need 0 <= start <= end <= len(text), got start={start}, end={end}, "
            f"len(text)={len(text)}"
        )
    for block_start, block_end in _blocks(text, start, stop):
        for group_start, group_end in _line_groups(text, block_start, block_end):
            for piece_start, piece_end in _sentences(text, group_start, group_end):
                s, e = trim(text, piece_start, piece_end)
                if s < e:
                    yield from _cap(text, s, e)


def _blocks(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Ranges between blank lines."""
    pos = start
    for match in _BLANK_LINES.finditer(text, start, end):
        yield pos, match.start()
        pos = match.end()
    yield pos, end


def _line_groups(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Runs of lines that may hold one sentence across line breaks."""
    width = _wrap_width(text, start, end)
    group_start = line_start = start
    newline = text.find("\n", start, end)
    while newline >= 0:
        following = text.find("\n", newline + 1, end)
        next_end = end if following < 0 else following
        if _breaks_line(text[line_start:newline], text[newline + 1 : next_end], width):
            yield group_start, newline
            group_start = newline + 1
        line_start, newline = newline + 1, following
    yield group_start, end


def _wrap_width(text: str, start: int, end: int) -> int:
    """The width a block looks hard-wrapped at (its longest line), or 0 when it does not look
    wrapped: one line, or lines too short to be prose wrapped by an editor."""
    if text.count("\n", start, end) < 1:
        return 0
    width, pos = 0, start
    while pos <= end:
        newline = text.find("\n", pos, end)
        stop = end if newline < 0 else newline
        width = max(width, len(text[pos:stop].rstrip()))
        pos = stop + 1
    return width if width >= MIN_WRAP_WIDTH else 0


def _breaks_line(line: str, next_line: str, width: int = 0) -> bool:
    """Whether the newline between these two lines ends a sentence on its own. ``width``: the
    block's wrap width (0: not hard-wrapped)."""
    before, after = line.strip(), next_line.lstrip()
    if not before or not after or _LINE_OPENER.match(after):
        return True
    if before.startswith("|") or " | " in before:  # a table row
        return True
    if len(before) >= SHORT_LINE_CHARS or before[-1] in _CONTINUES:
        return False
    if before.rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…"):
        return False  # the sentence rules decide (an abbreviation may continue)
    if width and len(line.rstrip()) + 1 + len(after.split(None, 1)[0]) > width - WRAP_SLACK:
        return False  # hard-wrapped: the next word did not fit on this line, the line goes on
    return _starts_sentence(after[0])


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Untrimmed pieces of ``[start, end)`` cut after sentence-final punctuation."""
    piece = start
    piece_first: int | None = None  # first non-space offset of the current piece
    for match in _TERMINAL.finditer(text, start, end):
        cut = match.end()
        if cut >= end:
            break
        marks = match.group().rstrip(_CLOSERS)
        if text[cut].isspace():
            following = _NON_SPACE.search(text, cut, end)
            if following is None:
                break
            char = text[following.start()]
            if not _starts_sentence(char):
                continue
            if marks == ".":
                if piece_first is None:
                    piece_first = _first_non_space(text, piece, match.start())
                if _is_abbreviation(text, match.start(), piece_first, char):
                    continue
        elif marks[-1] not in _FULLWIDTH_STOPS:
            continue  # "3.14", "e.g.,", "x.com": no whitespace, no break
        yield piece, cut
        piece, piece_first = cut, None
    yield piece, end


def _first_non_space(text: str, start: int, end: int) -> int:
    found = _NON_SPACE.search(text, start, end)
    return end if found is None else found.start()


def _starts_sentence(char: str) -> bool:
    return char.isdigit() or char in _OPENERS or (char.isalpha() and not char.islower())


def _is_abbreviation(text: str, dot: int, piece_first: int, next_char: str) -> bool:
    """Whether the period at ``dot`` ends an abbreviation, an initial or a list number."""
    low = max(piece_first, dot - _TOKEN_WINDOW)
    window = text[low:dot]
    if not window or window[-1].isspace():
        return False
    word = window.rsplit(None, 1)[-1]
    begin = len(window) - len(word)
    if begin == 0 and low > piece_first:
        return False  # a word longer than any abbreviation
    token = word.lstrip("\"'“‘«([{")
    lowered = token.lower()
    if lowered in _ABBREVIATIONS or _DOTTED.fullmatch(token):
        return True
    if lowered in _NUMBER_ABBREVIATIONS:
        return next_char.isdigit()  # "No. 5", "Fig. 3", but "said no. Then"
    if len(token) == 1 and token.isupper():
        return True  # an initial
    return token.isdigit() and len(token) <= 3 and low + begin == piece_first  # "1. Step"


def _cap(text: str, start: int, end: int) -> list[Span]:
    """``[start, end)`` (already trimmed) cut at whitespace into pieces <= MAX_SENTENCE_CHARS."""
    spans = []
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        cut = max(text.rfind(char, start + 1, limit + 1) for char in _CUT_CHARS)
        if cut <= start:
            cut = limit  # no whitespace to cut at: a hard cut is the only bound we can keep
        spans.append(Span(*trim(text, start, cut)))
        start = _first_non_space(text, cut, end)
    spans.append(Span(start, end))
    return spans
