"""``sieve serve``: the HTTP API under uvicorn (models load once, at startup)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from app.cli.common import describe, with_data_dir
from app.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="start the HTTP API", description=describe(__doc__))
    p.add_argument("--host", help="bind address (default: SIEVE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: SIEVE_PORT or 8000)")
    p.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    host = args.host or settings.host
    if not settings.auth and not is_loopback(host):
        print(
            f"sieve serve: refusing to listen on {host} without API keys. Set SIEVE_AUTH=true "
            "and SIEVE_ADMIN_KEY (24+ characters), or bind to 127.0.0.1 for local use.",
            file=sys.stderr,
        )
        return 2

    from app.main import create_app
    from app.observability import logging_config
    from app.serving import uvicorn_options

    # uvicorn applies the config itself, so its own loggers get the same (text or JSON) format
    uvicorn.run(
        create_app(with_data_dir(settings, args.data_dir)),
        host=host,
        port=args.port or settings.port,
        log_config=logging_config(settings),
        log_level=settings.log_level.lower(),
        **uvicorn_options(settings),
    )
    return 0
