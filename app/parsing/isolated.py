"""Run a parser in a child process with a deadline and a memory cap, so an untrusted file
cannot hold a CPU or the server's memory for long.

PDF, docx and HTML parsers (pypdf, python-docx/lxml, BeautifulSoup) build trees and decompress
streams in code we do not control; a crafted file can make one page cost a minute or a gigabyte.
Each such parse runs in a process forked from a small "forkserver" that has only the parsing
modules loaded (not torch or the models), under ``RLIMIT_AS`` and ``RLIMIT_CPU``, and is killed
at ``timeout_s``. Forking from that server costs a few milliseconds.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import resource
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from app.parsing.limits import ExtractionLimitError
from app.parsing.types import ParseError

logger = logging.getLogger(__name__)
T = TypeVar("T")
_MB = 1024 * 1024
# app.cli too: a child re-runs the main script (`sieve`), which then finds it imported
_PRELOAD = ["app.parsing", "app.uploads", "app.cli"]
_context_lock = threading.Lock()
_context: Any = None


def _forkserver() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context


def run_isolated(
    fn: Callable[..., T], *args: Any, name: str, timeout_s: float, memory_mb: int
) -> T:
    """``fn(*args)`` in a child process; its ``ParseError`` is raised here as it was raised
    there. Past ``timeout_s`` the child is killed and an ``ExtractionLimitError`` raised; a child
    that runs out of memory or dies gives a ``ParseError`` naming the file."""
    ctx = _forkserver()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, memory_mb, timeout_s, fn, args), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise ExtractionLimitError(
                f"'{name}' took more than {timeout_s:g} s to read (limit: SIEVE_PARSE_TIMEOUT_S)"
            )
        kind, value = receiver.recv()
    except EOFError:  # the child died without a word: killed by a limit, or crashed
        raise ParseError(
            f"'{name}' could not be read: the parser ran out of memory ({memory_mb} MiB, "
            "SIEVE_PARSE_MEMORY_MB) or crashed"
        ) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if kind == "error":
        raise value
    result: T = value
    return result


def _child(
    sender: multiprocessing.connection.Connection,
    memory_mb: int,
    timeout_s: float,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    limit = memory_mb * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(timeout_s) + 2  # a backstop: the parent kills at timeout_s wall time
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except ParseError as exc:
        outcome = ("error", exc)
    except MemoryError:
        outcome = ("error", ParseError(f"the parser ran out of memory ({memory_mb} MiB)"))
    except Exception as exc:  # a parser bug: report it as unreadable, never crash the server
        outcome = ("error", ParseError(f"the file could not be read ({type(exc).__name__})"))
    try:
        sender.send(outcome)
    except MemoryError:
        sender.send(("error", ParseError(f"the parser ran out of memory ({memory_mb} MiB)")))
    finally:
        sender.close()
