"""Deterministic extraction of named things from text (the embedded default: no LLM).

What counts as an entity mention:

- ``name``: runs of capitalised words, joined by lower-case particles inside a name
  ("University of California", "Leonardo da Vinci"); common sentence openers ("However",
  "The") are dropped from a run. A single capitalised word that opens a sentence ("Scientists
  found …", "Paris is …") cannot be told from a name here: it comes back as a ``weak``
  mention, which the graph keeps only when the same key is an entity from a strong mention;
- ``acronym``: two or more capitals, optionally dotted or pluralised (NASA, U.S., NGOs);
- ``quoted``: short quoted terms ("…", “…”, «…»);
- ``date``: "12 March 1990", "March 12, 1990", "1990-03-12", and four-digit years;
- ``quantity``: numbers with a unit (12 km, 3.5 %, 40 million, $20, 180 euros);
- ``title``: document and section titles, given by the caller.

:func:`normalise` maps surface forms to entity keys: Unicode NFKC, case-folded, possessives,
a leading article, parenthesised qualifiers ("Ed Wood (film)"), HTML entities and punctuation
dropped, and acronym plurals folded (NGOs → ngo). Other plurals are left alone: folding names
("Williams", "Paris") does more harm than good.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}"
    r"|(?:1[0-9]|20)\d{2})\b"
)
_UNITS = (
    r"%|percent|per cent|km|kilometres?|kilometers?|miles?|m|cm|mm|kg|g|tonnes?|tons?|lbs?|"
    r"pounds?|ml|l|litres?|liters?|hours?|minutes?|seconds?|days?|weeks?|months?|years?|"
    r"million|billion|trillion|thousand|euros?|dollars?|USD|EUR|GBP|°C|°F|MB|GB|TB|GHz|MHz|mph"
)
_QUANTITY = re.compile(
    rf"(?:[$€£]\s?\d[\d,]*(?:\.\d+)?(?:\s+(?:million|billion|trillion))?"
    rf"|\b\d[\d,]*(?:\.\d+)?\s?(?:{_UNITS}))(?![^\W\d_])"
)
_ACRONYM = re.compile(r"\b(?:[A-Z]\.){2,}|\b[A-Z][A-Z0-9&]*[A-Z0-9](?:s\b|\b)")
_QUOTED = re.compile(r"[\"“«]([^\"”»\n]{2,80}?)[\"”»]")
# a word: letters (any script), inner apostrophes, hyphens and dots (O'Brien, Jean-Luc, St.)
_WORD = re.compile(r"[^\W\d_](?:[^\W_]|['’\-.](?=[^\W_]))*\.?")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PARTICLES = _words(
    "of the de la le du des von van der den del da di dos das y al el bin ibn af zu"
)
_STARTERS = _words(
    """a an the in on at to of for from by with as after before during since until when while
    although though if but and or so then also however thus therefore moreover meanwhile he she
    it they we i you his her its their our my your this that these those there here some many
    most all each every both either neither no not one another other such what which who whom
    whose where why how today yesterday tomorrow yes unlike like despite because according
    between among under over into onto upon about above below around through throughout later
    earlier first finally now once yet still instead recently originally currently formerly then
    two three four five six seven eight nine ten several few both many more less following
    did does do is are was were has have had can could would should will may might must shall
    name list tell give find show compare"""
)
_NOT_NAMES = _STARTERS | _words(
    "i ii iii mr mrs ms dr st prof sir monday tuesday wednesday thursday friday saturday sunday"
)
_PUNCT = re.compile(r"[^\w\s&$€£%]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_PAREN = re.compile(r"\s*\([^)]*\)")
_POSSESSIVE = re.compile(r"['’]s?$")
MAX_NAME_WORDS = 8


@dataclass(frozen=True)
class Mention:
    text: str  # surface form
    key: str  # normalised entity key
    kind: str  # name | acronym | quoted | date | quantity | title
    sentence: int  # index of the sentence in the chunk (-1 for titles)
    weak: bool = False  # a lone capitalised sentence opener: maybe a name, maybe not


def normalise(text: str, kind: str = "name") -> str:
    """The entity key of a surface form ("" when nothing is left)."""
    s = unicodedata.normalize("NFKC", html.unescape(text)).strip()
    if kind in {"date", "quantity"}:  # keep decimal points and currency signs
        return _SPACE.sub(" ", s.casefold()).strip(" .,;:")
    s = _PAREN.sub("", s)
    if kind == "acronym":
        s = s.replace(".", "")
        if len(s) > 2 and s.endswith("s") and s[:-1].isupper():
            s = s[:-1]
    words = [_POSSESSIVE.sub("", w) for w in s.split()]
    s = _PUNCT.sub(" ", " ".join(words)).casefold()
    s = _SPACE.sub(" ", s).strip()
    if kind not in {"date", "quantity"} and s.startswith("the "):
        s = s[4:]
    return s


def title_mentions(title: str, where: int) -> list[Mention]:
    """A title as entity mentions: the whole title, and for a "Place, Region" title the part
    before the comma too (how the text usually names it: "Laie, Hawaii" → "Laie")."""
    out: list[Mention] = []
    for surface in dict.fromkeys([title.strip(), _PAREN.sub("", title).split(",")[0].strip()]):
        key = normalise(surface, "title")
        if key and key not in {m.key for m in out}:
            out.append(Mention(surface, key, "title", where))
    return out


def _is_cap(word: str) -> bool:
    return word[:1].isupper()


def _names(sentence: str) -> list[tuple[int, int, bool]]:
    """(start, end, weak) spans of capitalised-word runs in one sentence."""
    words = list(_WORD.finditer(sentence))
    spans: list[tuple[int, int, bool]] = []
    i = 0
    while i < len(words):
        if not _is_cap(words[i].group()):
            i += 1
            continue
        j = i + 1
        last = i  # index of the last capitalised word of the run
        while j < len(words) and j - i < MAX_NAME_WORDS:
            gap = sentence[words[j - 1].end() : words[j].start()]
            if gap.strip() not in {"", "-", "&"}:  # punctuation ends a name
                break
            w = words[j].group()
            if _is_cap(w):
                last = j
            elif w.casefold() not in _PARTICLES:
                break
            j += 1
        first = i
        # a sentence opener ("The", "In", "However") is not part of a name
        while first <= last and words[first].group().rstrip(".").casefold() in _NOT_NAMES:
            first += 1
        opener = words[i].start() == _first_word_start(sentence)
        if first <= last:
            weak = opener and first == i and first == last
            spans.append((words[first].start(), words[last].end(), weak))
        i = last + 1
    return spans


def _name_kind(text: str) -> str:
    return "acronym" if _ACRONYM.fullmatch(_POSSESSIVE.sub("", text)) else "name"


def _first_word_start(sentence: str) -> int:
    m = _WORD.search(sentence)
    return m.start() if m else -1


def extract(sentences: Sequence[str], titles: Sequence[str] = ()) -> list[Mention]:
    """Mentions in a chunk's sentences (in order of appearance), then the given titles."""
    found: list[tuple[int, int, Mention]] = []
    for n, sentence in enumerate(sentences):
        spans: list[tuple[int, int, str, bool]] = [
            *((m.start(), m.end(), "date", False) for m in _DATE.finditer(sentence)),
            *((m.start(), m.end(), "quantity", False) for m in _QUANTITY.finditer(sentence)),
            *(
                (m.start(1), m.end(1), "quoted", False)
                for m in _QUOTED.finditer(sentence)
                if len(m.group(1).split()) <= MAX_NAME_WORDS
            ),
            *((a, b, _name_kind(sentence[a:b]), weak) for a, b, weak in _names(sentence)),
            *((m.start(), m.end(), "acronym", False) for m in _ACRONYM.finditer(sentence)),
        ]
        taken: list[tuple[int, int]] = []  # earlier kinds win overlaps
        for start, end, kind, weak in spans:
            if any(start < e and s < end for s, e in taken):
                continue
            surface = sentence[start:end].strip().rstrip(".,;:")
            key = normalise(surface, kind)
            if not key or (kind == "name" and key in _NOT_NAMES):
                continue
            taken.append((start, end))
            found.append((n, start, Mention(surface, key, kind, n, weak and kind == "name")))
    found.sort(key=lambda f: (f[0], f[1]))
    out = [m for _, _, m in found]
    for title in titles:
        out += title_mentions(title, -1)
    return out
