"""Stored text on the operator's terminal: titles, headings and passages holding ESC, BEL, C1 or
bidi-override characters come out of `sieve docs list`, `sieve ask` and `sieve ingest` escaped,
never raw. The hostile document is stored through the collection, as an upload that got past any
upload-time check would be."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from app.cli import common, main
from app.cli.common import dumps, printable
from app.collections import Collections
from app.parsing.types import ParsedDocument, Section
from app.settings import Settings
from index import Embedder
from tests.app.live_server import free_port

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202e"  # set the window title, clear the screen, reverse
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\x00")


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    monkeypatch.setattr(common, "load_embedder", lambda *args: embedder)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Nothing listens on the configured port: `sieve ask` answers in-process."""
    return settings.model_copy(update={"port": free_port()})


def store_hostile_document(settings: Settings, embedder: Embedder) -> None:
    text = (
        f"Kettle {HOSTILE} facts\n\nThe kettle boils water in two minutes \x9b31m{HOSTILE}. "
        "The museum opens on Sundays \u2066 and holidays."
    )
    body = text.index("The kettle")
    parsed = ParsedDocument(
        title=f"Kettles{HOSTILE}",
        text=text,
        sections=[Section((HOSTILE,), body, len(text))],
        format="md",
    )
    collections = Collections(settings, embedder)
    try:
        collections.create("default")
        collections.get("default").ingest([(parsed, f"evil{HOSTILE}.md")])
    finally:
        collections.close()


def assert_no_raw_controls(text: str) -> None:
    assert not any(c in text for c in RAW), ascii(text)


# ---- the helper ---------------------------------------------------------------------------
def test_printable_escapes_controls_and_bidi_keeps_text() -> None:
    assert printable(HOSTILE) == "\\x1b]0;pwned\\x07\\x1b[2J\\u202e"
    assert printable("a\x00b\x7f\x9b\r") == "a\\x00b\\x7f\\x9b\\r"
    for char in ["\u202a", "\u202d", "\u2066", "\u2069", "\u200e", "\u2028", "\U000e0041"]:
        assert printable(char) == ascii(char)[1:-1]
    assert printable("\ud800") == "\\ud800"  # a lone surrogate would crash print()
    kept = "Crème brûlée\tdé\n日本語 \u00a0 👩\u200d💻 نمی\u200cخواهم"
    assert printable(kept) == kept


def test_printable_leaves_nothing_that_reorders_or_controls() -> None:
    everything = "".join(chr(i) for i in range(0x3000)) + "\U000e0001\U000e007f"
    unsafe = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    allowed = {"\n", "\t", "\u200c", "\u200d"}
    left = {c for c in printable(everything) if unicodedata.category(c) in unsafe}
    assert left <= allowed


def test_dumps_is_the_same_json_without_raw_controls() -> None:
    value = {"title": f"Kettles{HOSTILE}\x85\u2028\U000e0041é", "n": [1, 2.5, None]}
    text = dumps(value)
    assert_no_raw_controls(text)
    assert "\u2028" not in text and "\U000e0041" not in text
    assert json.loads(text) == value and "é" in text  # non-ASCII text stays readable


# ---- the commands -------------------------------------------------------------------------
def test_docs_list_and_ask_escape_a_hostile_title_and_passage(
    settings: Settings, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    store_hostile_document(settings, embedder)

    assert main(["docs", "list"], settings) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert "Kettles\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in out

    assert main(["docs", "list", "--json"], settings) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert json.loads(out)["documents"][0]["title"] == f"Kettles{HOSTILE}"

    question = ["ask", "How fast does the kettle boil water?", "--show-context"]
    assert main(question, settings) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert "[1] Kettles\\x1b]0;pwned" in out and "two minutes \\x9b31m\\x1b]0;pwned" in out

    assert main([*question, "--json"], settings) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert HOSTILE in json.loads(out)["citations"][0]["title"]


def test_docs_rm_prints_the_title_escaped(
    settings: Settings, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    store_hostile_document(settings, embedder)
    assert main(["docs", "list", "--json"], settings) == 0
    doc_id = json.loads(capsys.readouterr().out)["documents"][0]["id"]
    assert main(["docs", "rm", doc_id, "--yes"], settings) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert f"deleted {doc_id}  Kettles\\x1b]0;pwned" in out


def test_ingest_escapes_hostile_file_names(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / f"clear{HOSTILE}.png").write_bytes(b"\x89PNG")
    (folder / f"bad{HOSTILE}.txt").write_bytes(b"\xff\xfe\xfa")
    assert main(["ingest", str(folder)], settings) == 1
    captured = capsys.readouterr()
    assert_no_raw_controls(captured.out + captured.err)
    assert "skipped 1 unsupported file: " in captured.out and "clear\\x1b]0;" in captured.out
    assert "failed: " in captured.err and "bad\\x1b]0;" in captured.err
