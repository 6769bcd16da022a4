"""``sieve serve``: the HTTP API under uvicorn (models load once, at startup)."""

from __future__ import annotations

import argparse

from app.cli.common import describe, with_data_dir
from app.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="start the HTTP API", description=describe(__doc__))
    p.add_argument("--host", help="bind address (default: SIEVE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: SIEVE_PORT or 8000)")
    p.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from app.observability import logging_config

    # uvicorn applies the config itself, so its own loggers get the same (text or JSON) format
    uvicorn.run(
        create_app(with_data_dir(settings, args.data_dir)),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=logging_config(settings),
        log_level=settings.log_level.lower(),
    )
    return 0
