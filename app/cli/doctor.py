"""``sieve doctor``: is this installation able to serve? One line per check: ok, warn or FAIL.

Checks: Python and torch, the bundled MiniLM file's sha256, the embedder loading offline, the
pruner checkpoint, the precision the models run in (and the CPU features it was chosen from), the
GPU, FAISS (version, GPU build, configured vs stored index type), the data
dir (writable, free space, file sizes; sieve.db's with its -wal and -shm files, where SQLite
keeps recent writes) and the configured LLM backend. Exit 1 when any FAILs.
Every check is quick (the slowest loads the two small models): ~10 s in all on a CPU.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import httpx

from app.cli.common import describe, dumps, embedder_for, printable, use_colour, with_data_dir
from app.settings import Settings

Status = Literal["ok", "warn", "FAIL"]
DATA_FILES = ("sieve.db", "faiss.index", "graph.npz", "bm25.npz")
LOW_DISK_BYTES = 1 << 30
LLM_TIMEOUT_S = 3.0
# FAISS file tags (the first 4 bytes; inside an IndexIDMap2, 4 bytes after its 33-byte header)
FAISS_KINDS = {b"IxFI": "flat", b"IxF2": "flat (L2)", b"IHNf": "hnsw", b"IwFl": "ivf"}
COLOURS = {"ok": "\x1b[32m", "warn": "\x1b[33m", "FAIL": "\x1b[1;31m"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    ms: float = 0.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check models, GPU, FAISS, data dir and LLM backend",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    p.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks(with_data_dir(settings, args.data_dir))
    failed = any(c.status == "FAIL" for c in checks)
    if args.json:
        print(dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}))
    else:
        colour = use_colour()
        for c in checks:
            status = f"{COLOURS[c.status]}{c.status:<4}\x1b[0m" if colour else f"{c.status:<4}"
            # a detail may quote an LLM server's answer or an exception: no raw control characters
            print(f"{status}  {c.name:<10}  {printable(c.detail)}")
        counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "FAIL")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if failed else 0


def run_checks(settings: Settings) -> list[Check]:
    return [_timed(name, check, settings) for name, check in CHECKS]


def _timed(name: str, check: Callable[[Settings], tuple[Status, str]], s: Settings) -> Check:
    started = time.perf_counter()
    try:
        status, detail = check(s)
    except Exception as exc:  # a doctor reports whatever broke, it does not crash on it
        status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
    return Check(name, status, detail, round((time.perf_counter() - started) * 1000, 1))


# ---- runtime and models -------------------------------------------------------------------
def check_python(settings: Settings) -> tuple[Status, str]:
    import torch

    return "ok", f"Python {platform.python_version()}, torch {torch.__version__}"


def check_minilm_file(settings: Settings) -> tuple[Status, str]:
    from index import MINILM_SHA256, bundled_model_path
    from index.embedder import sha256_file

    try:
        weights = bundled_model_path() / "model.safetensors"
    except ImportError as exc:
        used = settings.embedder_path is None
        return ("FAIL" if used else "warn"), f"bundled MiniLM not installed ({exc})"
    digest = sha256_file(weights)
    if digest != MINILM_SHA256:
        return "FAIL", f"{weights} has sha256 {digest}, expected {MINILM_SHA256}"
    return "ok", f"{weights} sha256 {digest[:12]}… matches"


def check_embedder(settings: Settings) -> tuple[Status, str]:
    started = time.perf_counter()
    embedder = embedder_for(settings)  # sets HF_HUB_OFFLINE: a hub download would fail
    vector = embedder.encode(["sieve doctor"])
    source = settings.embedder_path or "bundled all-MiniLM-L6-v2"
    took = time.perf_counter() - started
    device = embedder.model.device
    return "ok", (
        f"{source} loads offline on {device} in {embedder.precision} "
        f"(dim {vector.shape[1]}, {took:.1f} s)"
    )


def check_pruner(settings: Settings) -> tuple[Status, str]:
    from app.services import build_pruner
    from index import CachedEncoder
    from pruner import BlendedPruner
    from pruner.inference import CHECKPOINT

    path = settings.pruner_path or CHECKPOINT
    if settings.pruner == "similarity":
        return "ok", f"SIEVE_PRUNER=similarity: the checkpoint ({path}) is not used"
    started = time.perf_counter()
    pruner = build_pruner(settings, CachedEncoder(embedder_for(settings).encode))
    pruner.process("What is checked?", [["The doctor checks the pruner.", "It runs."]])
    took = time.perf_counter() - started
    blend = ""
    if isinstance(pruner, BlendedPruner):
        blend = (
            f", sentences kept by its blend with the cosine (threshold {pruner.blend.threshold:g})"
        )
        pruner = pruner.inner
    precision = getattr(pruner, "precision", "fp32")
    return "ok", f"{path} loads and runs in {precision}{blend} ({took:.1f} s)"


def check_precision(settings: Settings) -> tuple[Status, str]:
    from app.precision import cpu_features, resolve_precision

    chosen = resolve_precision(settings.precision, settings.device)
    features = cpu_features()
    shown = ", ".join(features) or "none of amx, avx512_bf16, avx512_vnni, avx512"
    detail = f"{chosen.precision} on {chosen.device} ({chosen.reason}); CPU: {shown}"
    native = {"amx", "avx512_bf16"} & set(features)
    if chosen.precision == "bf16" and chosen.device.startswith("cpu") and not native:
        return "warn", f"{detail}: bf16 is emulated on this CPU, likely slower than fp32"
    return "ok", detail


def check_gpu(settings: Settings) -> tuple[Status, str]:
    import torch

    if not torch.cuda.is_available():
        if settings.device.startswith("cuda"):
            return "FAIL", f"SIEVE_DEVICE={settings.device} but torch sees no GPU"
        return "ok", "none: models run on the CPU"
    props = torch.cuda.get_device_properties(0)
    more = f" (+{torch.cuda.device_count() - 1} more)" if torch.cuda.device_count() > 1 else ""
    return "ok", f"{props.name}, {props.total_memory / 2**30:.1f} GiB{more}"


# ---- FAISS and the data dir ---------------------------------------------------------------
def check_faiss(settings: Settings) -> tuple[Status, str]:
    import faiss

    from index import faiss_has_gpu

    gpu = "GPU FAISS available" if faiss_has_gpu() else "no GPU FAISS"
    head = f"faiss {faiss.__version__}, {gpu}; configured {settings.index_kind}"
    if not settings.index_path.exists():
        return "ok", f"{head}; no faiss.index yet"
    stored, count = stored_index_kind(settings.index_path)
    detail = f"{head}; stored {stored} ({count} vectors)"
    if stored != settings.index_kind:
        return "warn", f"{detail}: it will be rebuilt from sieve.db at the next start"
    return "ok", detail


def stored_index_kind(path: Path) -> tuple[str, int]:
    """The index type and vector count from a FAISS file's header, without loading it."""
    with path.open("rb") as fh:
        head = fh.read(64)
    tag, count = head[:4], int.from_bytes(head[8:16], "little", signed=True)
    if tag == b"IxM2":  # IndexIDMap2 around the real index
        tag = head[37:41]
    return FAISS_KINDS.get(tag, f"unknown ({tag!r})"), count


def check_data_dir(settings: Settings) -> tuple[Status, str]:
    path = settings.data_dir.resolve()
    if path.exists() and not path.is_dir():
        return "FAIL", f"{path} exists and is not a directory"
    existing = path if path.exists() else _nearest_existing(path)
    if not _writable(existing):
        return "FAIL", f"{existing} is not writable"
    free = shutil.disk_usage(existing).free
    state = "exists" if path.exists() else "will be created"
    sizes = ", ".join(f"{name} {_data_file_size(path / name)}" for name in DATA_FILES)
    detail = f"{path} {state}, writable, {free / 2**30:.1f} GiB free; {sizes}"
    return ("warn" if free < LOW_DISK_BYTES else "ok"), detail


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _data_file_size(path: Path) -> str:
    """A SQLite database counts its -wal and -shm files: until a checkpoint, recent writes (all
    of a fresh ingest) live in the -wal file while the main file may still be 4 KiB."""
    wal_bytes = sum(_bytes(path.with_name(path.name + suffix)) for suffix in ("-wal", "-shm"))
    if not path.exists() or not wal_bytes:
        return _size(path)
    return f"{_human(_bytes(path) + wal_bytes)} (incl. {_human(wal_bytes)} WAL)"


def _bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # absent, or a -wal file a checkpoint just removed
        return 0


def _size(path: Path) -> str:
    return _human(path.stat().st_size) if path.exists() else "absent"


def _human(size: int) -> str:
    n = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ---- LLM backend ---------------------------------------------------------------------------
def check_llm(settings: Settings) -> tuple[Status, str]:
    if settings.llm == "extractive":
        return "ok", "extractive: answers quote the kept sentences, no model needed"
    if settings.llm == "openai":
        return check_openai(settings)
    if settings.llm == "llamacpp":
        return check_llamacpp(settings)
    return "warn", f"unknown backend {settings.llm!r}: not checked"


def check_openai(settings: Settings) -> tuple[Status, str]:
    url = f"{settings.llm_base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    try:
        r = httpx.get(url, headers=headers, timeout=LLM_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return "FAIL", f"openai server unreachable: GET {url}: {str(exc) or type(exc).__name__}"
    if r.status_code in (401, 403):
        return "FAIL", f"GET {url} answered {r.status_code}: check SIEVE_LLM_API_KEY"
    if r.status_code >= 400:
        return "warn", f"GET {url} answered {r.status_code} (server up, /models not served)"
    models = [m.get("id") for m in r.json().get("data", []) if isinstance(m, dict)]
    listed = "listed" if settings.llm_model in models else "not listed"
    return "ok", f"{url} reachable, {len(models)} model(s); {settings.llm_model!r} {listed}"


def check_llamacpp(settings: Settings) -> tuple[Status, str]:
    """llama-cpp-python imports, and the GGUF file is there (or the bundled Gemma assembles,
    once, where the first request would put it)."""
    try:
        import llama_cpp
    except ImportError as exc:
        return "FAIL", f"llama-cpp-python not importable ({exc}): pip install 'sieve-rag[llamacpp]'"
    version = getattr(llama_cpp, "__version__", "?")
    path = gguf_path(settings)
    if not path.is_file():
        return "FAIL", f"llama_cpp {version}; GGUF file {path} does not exist"
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        return "FAIL", f"{path} is not a GGUF file (starts with {magic!r})"
    return "ok", f"llama_cpp {version}; {path} ({_size(path)})"


def gguf_path(settings: Settings) -> Path:
    """SIEVE_LLAMACPP_MODEL_PATH, else the bundled Gemma 3 270M assembled into the data dir.
    Read with getattr: the llama.cpp backend may be absent from this version of sieve."""
    configured = getattr(settings, "llamacpp_model_path", None)
    if configured:
        return Path(str(configured)).expanduser()
    from app.llm import llamacpp

    assemble: Callable[[Path], Path] = llamacpp.assemble_default_model
    return assemble(settings.data_dir / "models")


CHECKS: list[tuple[str, Callable[[Settings], tuple[Status, str]]]] = [
    ("python", check_python),
    ("minilm", check_minilm_file),
    ("embedder", check_embedder),
    ("pruner", check_pruner),
    ("precision", check_precision),
    ("gpu", check_gpu),
    ("faiss", check_faiss),
    ("data dir", check_data_dir),
    ("llm", check_llm),
]
