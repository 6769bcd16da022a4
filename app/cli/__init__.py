"""The ``sieve`` command: serve, ingest, ask, docs, eval, doctor.

``ingest``, ``ask`` and ``docs`` work on the local data dir in-process by default, or against a
running server with ``--server URL`` (``ask`` uses the server on SIEVE_HOST:SIEVE_PORT when one
runs there: it has the models loaded). A server running on the same data dir picks up what
``sieve ingest`` stored at its next request (it watches SQLite for commits by other processes).
Expected failures (server unreachable, unknown id, ...) print one line on stderr and exit
non-zero; run with ``-v`` to see progress logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app.cli import ask, docs, doctor, evaluate, ingest, serve
from app.cli.common import CliError, describe, expected_failure, printable
from app.cli.ingest import iter_files
from app.settings import Settings, get_settings

__all__ = ["iter_files", "main"]


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run one command; returns its exit code. ``settings`` default to the environment."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "pass_through", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    args.bench_args = extra[1:] if extra[:1] == ["--"] else extra
    _quiet_libraries(args.verbose)
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    """The command's exit code; expected failures become one line on stderr."""
    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    try:
        code: int = args.func(args, settings or _settings_from_env())
    except CliError as exc:
        print(printable(f"sieve {name}: {exc}"), file=sys.stderr)  # may quote a server's text
        return exc.code
    except BrokenPipeError:  # `sieve docs list | head`: the reader left, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not expected_failure(exc):
            raise  # a bug: the traceback is what a report needs
        print(printable(f"sieve {name}: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    return code


def _settings_from_env() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise CliError(f"invalid SIEVE_* setting: {exc}", code=2) from exc


def _quiet_libraries(verbose: bool) -> None:
    """Our progress bar and results only, unless -v: no model-loading bars or info logs."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read at transformers import


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sieve",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    for module in (serve, ingest, ask, docs, evaluate, doctor):
        module.register(sub)
    return parser
