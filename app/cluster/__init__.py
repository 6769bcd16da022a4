"""Sieve past one process, on Ray: ``sieve ingest --ray`` (Ray Data: files parsed and chunked
in parallel tasks, embedded by a pool of model actors, committed in batches through the same
all-or-nothing path as the API) and ``sieve serve --ray`` (Ray Serve: the HTTP app as a
deployment of several replicas over one data dir).

Ray is optional (``pip install -e '.[ray]'``): nothing here is imported unless one of those
commands runs, and :func:`require_ray` says how to install it when it is missing.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

INSTALL_HINT = "Ray is not installed: pip install -e '.[ray]' (or pip install 'ray[serve,data]')"


class RayMissingError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


def require_ray() -> ModuleType:
    """The ``ray`` module, or ``RayMissingError`` with the install command."""
    try:
        import ray
    except ImportError:
        raise RayMissingError() from None
    return ray


def is_local(address: str | None) -> bool:
    """Whether ``address`` means a new cluster of this machine alone (None or "local")."""
    return address in (None, "local")


def start_ray(
    address: str | None, num_cpus: int | None = None, num_gpus: int | None = None
) -> ModuleType:
    """Join the cluster at ``address`` ('auto': the one this machine belongs to), or start a
    local one (``num_cpus``, ``num_gpus``: what this machine has when None; tests declare
    logical ones). Ray's own dashboard stays off."""
    quiet = logging.getLogger().getEffectiveLevel()  # the CLI's -v decides, not Ray's defaults
    if quiet > logging.INFO:
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")  # read when ray.data is imported
    ray = require_ray()
    if not ray.is_initialized():
        local = is_local(address)
        ray.init(  # "local": a new cluster, never one that RAY_ADDRESS or `ray start` left
            address="local" if local else address,
            num_cpus=num_cpus if local else None,
            num_gpus=num_gpus if local else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    for name in ("ray", "ray.data", "ray.serve"):
        logging.getLogger(name).setLevel(max(quiet, logging.WARNING))
    return ray
