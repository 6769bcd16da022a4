"""``sieve serve``: the HTTP API under uvicorn (models load once, at startup)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from app.cli.common import CliError, add_ray_options, describe, with_data_dir
from app.settings import Settings

RAY_ONLY = (
    "address",
    "replicas",
    "pruners",
    "embedders",
    "collection_replicas",
    "collections_per_replica",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="start the HTTP API", description=describe(__doc__))
    p.add_argument("--host", help="bind address (default: SIEVE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: SIEVE_PORT or 8000)")
    p.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    ray = add_ray_options(
        p,
        "on Ray Serve (the 'ray' extra)",
        "--ray serves the same API from several replicas over one data dir, with the pruner and "
        "the embedder as batched model deployments (GPUs when the cluster has them)",
    )
    ray.add_argument("--replicas", type=int, help="HTTP replicas (default 2)")
    ray.add_argument("--pruners", type=int, help="most pruner replicas (default 1)")
    ray.add_argument("--embedders", type=int, help="most embedder replicas (default 1)")
    ray.add_argument(
        "--collection-replicas",
        type=int,
        help="spread the collections over this many replicas of their own (default 0: every "
        "HTTP replica holds them all)",
    )
    ray.add_argument(
        "--collections-per-replica",
        type=int,
        help="collections one of those replicas keeps open, least recently used out (default 4)",
    )
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

    if args.ray:
        return _serve_with_ray(args, with_data_dir(settings, args.data_dir), host)
    given = ["--" + n.replace("_", "-") for n in RAY_ONLY if getattr(args, n) is not None]
    if given:
        raise CliError(f"{', '.join(given)} go(es) with --ray", code=2)

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


def _serve_with_ray(args: argparse.Namespace, settings: Settings, host: str) -> int:
    counts = {  # the defaults, and the least each may be
        "replicas": (2, 1),
        "pruners": (1, 1),
        "embedders": (1, 1),
        "collection_replicas": (0, 0),
        "collections_per_replica": (4, 1),
    }
    chosen = {}
    for name, (default, least) in counts.items():
        value = getattr(args, name)
        if value is not None and value < least:
            flag = "--" + name.replace("_", "-")
            raise CliError(f"{flag} must be >= {least}, got {value}", code=2)
        chosen[name] = default if value is None else value
    from app.cluster import RayMissingError

    try:
        from app.cluster.serve import RayServeOptions, start_serving

        options = RayServeOptions(address=args.address, **chosen)
        serving = start_serving(settings, host, args.port or settings.port, options)
    except RayMissingError as exc:
        raise CliError(str(exc)) from exc
    print(f"sieve serving on {serving.url} through Ray Serve ({options.replicas} replicas)")
    serving.wait()
    return 0
