"""What every ``sieve`` command shares: the error type, the server client, the data-dir
override, the embedder loaded once per process, terminal colour detection and making stored
text safe to print on a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import httpx

from app.settings import Settings

if TYPE_CHECKING:  # importing index loads FAISS: not needed for `sieve --help`
    from index import Embedder


class CliError(Exception):
    """An expected failure: printed as one line on stderr, no traceback, exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def describe(doc: str | None) -> str:
    """A module docstring as ``--help`` text: reST double backquotes read as plain quotes."""
    return (doc or "").replace("``", "`")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` (in-process mode) and ``--server`` (a running server) for one command."""
    parser.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    parser.add_argument(
        "--server", help="talk to a running server instead, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--collection", help="collection to work on (default: the API key's, or 'default')"
    )


def add_ray_options(parser: argparse.ArgumentParser, title: str, description: str) -> Any:
    """The ``--ray`` and ``--address`` options of one command, in a group of their own (the
    command adds its own Ray options to the group returned)."""
    group = parser.add_argument_group(title, description)
    group.add_argument("--ray", action="store_true", help="run on Ray (the 'ray' extra)")
    group.add_argument(
        "--address",
        help="Ray cluster to join ('auto': the one this machine belongs to; default: start a "
        "local one)",
    )
    return group


def with_data_dir(settings: Settings, data_dir: str | None) -> Settings:
    return settings.model_copy(update={"data_dir": Path(data_dir)}) if data_dir else settings


@lru_cache(maxsize=2)
def load_embedder(
    path: Path | None, device: str, batch_size: int, precision: str = "fp32"
) -> Embedder:
    """One loaded embedder per process: commands that run in-process share it."""
    from index import Embedder

    return Embedder(path, device, batch_size, precision=precision).load()


def embedder_for(settings: Settings) -> Embedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only, never the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from app.precision import resolve_precision

    chosen = resolve_precision(settings.precision, settings.device)
    return load_embedder(
        settings.embedder_path, chosen.device, settings.embed_batch_size, chosen.precision
    )


class Server:
    """A running Sieve server: JSON requests whose failures become ``CliError``s."""

    def __init__(self, url: str, api_key: str = "", timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body; ``CliError`` when unreachable or answering >= 400."""
        try:
            r = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the server at {self.url}: {_reason(exc)}") from exc
        if r.status_code >= 400:
            raise CliError(f"server answered {r.status_code}: {error_detail(r)}")
        return r.json() if r.content else None


class _Response(Protocol):  # httpx's, or the one the in-process TestClient returns
    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def error_detail(r: _Response) -> str:
    """The API's ``detail`` message (a string, or a list of validation errors), else the body."""
    try:
        detail = r.json().get("detail", r.text)
    except (ValueError, AttributeError):
        return r.text[:500]
    return detail if isinstance(detail, str) else str(detail)


def expected_failure(exc: Exception) -> bool:
    """Failures the user can act on from one line: a data dir made with another embedder, a
    damaged model file, a folder or file the OS refused."""
    from app.collection import EmbedderMismatchError
    from index import ModelIntegrityError

    return isinstance(exc, EmbedderMismatchError | ModelIntegrityError | OSError)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def use_colour(stream: IO[str] | None = None) -> bool:
    """ANSI colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


# ---- stored text on a terminal --------------------------------------------------------------
# Titles, passages and answers come from documents anyone with an upload key wrote, or from a
# server: an ESC or C1 byte is a terminal command (clear the screen, set the window title,
# rewrite the clipboard), a bidi override reorders the rest of the line. Zero-width joiners stay:
# emoji sequences and Indic/Persian text need them, and they reorder nothing.
_KEEP = frozenset("\n\t\u200c\u200d")
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))  # controls, format, lone surrogates, separators


def _unsafe(char: str) -> bool:
    return char not in _KEEP and unicodedata.category(char) in _UNSAFE


def printable(text: str) -> str:
    """``text`` with every control or format character (newline and tab excepted) written as a
    visible escape: ESC becomes the 4 characters ``\\x1b``, U+202E the 6 characters ``\\u202e``."""
    if text.isprintable():  # the common case: nothing to escape (newline/tab are not printable)
        return text
    return "".join(ascii(c)[1:-1] if _unsafe(c) else c for c in text)


def dumps(value: Any) -> str:
    """Indented JSON for a terminal: non-ASCII text stays readable, but control and format
    characters become JSON ``\\uXXXX`` escapes (the same value for a JSON reader)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return "".join(_json_escape(c) if _unsafe(c) else c for c in text)


def _json_escape(char: str) -> str:
    if ord(char) <= 0xFFFF:
        return f"\\u{ord(char):04x}"
    high, low = divmod(ord(char) - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def confirm(question: str) -> bool:
    """Ask on a terminal; anything but y/yes declines."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
