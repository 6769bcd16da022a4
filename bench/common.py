"""Shared helpers of the benchmarks: where the data is, percentiles, writing results."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def data_dir() -> Path:
    """``SIEVE_BENCH_DATA`` or ../shared/data; exits with a clear message when absent."""
    path = Path(os.environ.get("SIEVE_BENCH_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        sys.exit(
            f"benchmark data not found at {path}: put the shared data sets there "
            "or set SIEVE_BENCH_DATA to their folder"
        )
    return path


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"benchmark data file missing: {path}")
    return path


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "p99": round(float(np.percentile(arr, 99)), 2),
        "mean": round(float(arr.mean()), 2),
    }


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
