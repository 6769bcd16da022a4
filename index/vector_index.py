"""FAISS inner-product index over unit vectors, with stable int64 ids (``IndexIDMap2``).

Kinds: ``flat`` (exact, the default), ``hnsw`` (graph ANN for large collections; FAISS HNSW
cannot remove vectors, so a removal rebuilds the graph from the vectors it holds) and ``ivf``
(inverted lists; trained on the first vectors added, with fewer lists when there are few
vectors). With a GPU build of FAISS and a visible GPU, flat search runs on the GPU (GPU flat
indexes cannot remove either, so removal rebuilds there too; not exercised here: no GPU).

The file is written atomically (temp file + fsync + rename). ``matches(ids)`` tells whether the
index holds exactly the given ids, so the caller can rebuild it from the store when not.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from index.records import SearchHit

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
IVF_POINTS_PER_LIST = 39  # FAISS warns below this many training points per list
_HASHTABLE = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]


def faiss_has_gpu() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class VectorIndex:
    def __init__(
        self,
        dim: int,
        kind: IndexKind = "flat",
        hnsw_m: int = 32,
        ivf_nlist: int = 1024,
        ivf_nprobe: int = 16,
        use_gpu: bool = True,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be > 0, got {dim}")
        if kind not in ("flat", "hnsw", "ivf"):
            raise ValueError(f"index kind must be flat, hnsw or ivf, got {kind!r}")
        self.dim = dim
        self.kind: IndexKind = kind
        self.hnsw_m = hnsw_m
        self.ivf_nlist = ivf_nlist
        self.ivf_nprobe = ivf_nprobe
        self.on_gpu = use_gpu and kind == "flat" and faiss_has_gpu()
        self._lock = threading.RLock()
        self._gpu_res: Any = None
        self._index: Any = self._empty()

    # ---- construction ----------------------------------------------------------------------
    def _empty(self, n_train: int = 0) -> Any:
        inner: Any
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = max(64, self.hnsw_m * 2)
        elif self.kind == "ivf":
            nlist = max(1, min(self.ivf_nlist, n_train // IVF_POINTS_PER_LIST))
            quantizer = faiss.IndexFlatIP(self.dim)
            ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.nprobe = min(self.ivf_nprobe, nlist)
            # IVF keeps ids itself; IndexIDMap2 around it would renumber wrongly on removal.
            ivf.set_direct_map_type(_HASHTABLE)
            self._ivf_quantizer = quantizer  # the IVF index does not own it: keep it alive
            return ivf
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return self._to_device(faiss.IndexIDMap2(inner))

    def _to_device(self, index: Any) -> Any:
        if not self.on_gpu:
            return index
        self._gpu_res = self._gpu_res or faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_res, 0, index)

    @property
    def nlist(self) -> int:
        """IVF lists in use (0 for other kinds or an untrained IVF index)."""
        return int(self._index.nlist) if self.kind == "ivf" and self._index.is_trained else 0

    def outgrown(self) -> bool:
        """True when an IVF index, trained on few vectors, could now use twice as many lists."""
        if self.kind != "ivf" or not self.nlist:
            return False
        return min(self.ivf_nlist, self.ntotal // IVF_POINTS_PER_LIST) >= 2 * self.nlist

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        with self._lock:
            if self.kind != "ivf":
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            lists = self._index.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(lists.nlist)
                if lists.list_size(i)
            ]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def matches(self, ids: np.ndarray) -> bool:
        """True when this index holds exactly ``ids`` (any order)."""
        mine = self.ids()
        return mine.shape == ids.shape and bool(np.array_equal(np.sort(mine), np.sort(ids)))

    # ---- updates ---------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if ids.shape != (vectors.shape[0],):
            raise ValueError(f"need one id per vector, got {ids.shape} for {vectors.shape}")
        if len(ids) == 0:
            return
        with self._lock:
            if not self._index.is_trained:
                self._index = self._empty(n_train=len(vectors))
                self._index.train(vectors)
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; returns how many were present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        with self._lock:
            if self.kind == "flat" and not self.on_gpu:
                return int(self._index.remove_ids(ids))
            if self.kind == "ivf":  # the hashtable direct map only takes an array selector
                selector = faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))
                return int(self._index.remove_ids(selector))
            keep = np.setdiff1d(self.ids(), ids)
            removed = self.ntotal - len(keep)
            if removed:
                vectors = np.zeros((len(keep), self.dim), dtype=np.float32)
                for row, i in enumerate(keep):
                    vectors[row] = self._index.reconstruct(int(i))
                self.rebuild(keep, vectors)
            return removed

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole content (retrains an IVF index on ``vectors``)."""
        with self._lock:
            self._index = self._empty(n_train=len(vectors))
            if len(ids):
                if not self._index.is_trained:
                    self._index.train(np.ascontiguousarray(vectors, dtype=np.float32))
                self.add(ids, vectors)

    # ---- search ----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> list[list[SearchHit]]:
        """Top-k hits per query row, best first (inner product = cosine on unit vectors)."""
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        with self._lock:
            if self.ntotal == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            scores, ids = self._index.search(queries, min(k, self.ntotal))
        return [
            [SearchHit(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        with self._lock:
            index = faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index
            faiss.write_index(index, str(tmp))
        os.chmod(tmp, 0o600)  # the vectors are the documents' content: the owner's only
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> VectorIndex:
        """Read an index written by ``save``; ``options`` as for the constructor."""
        raw = faiss.read_index(str(path))  # already downcast; keep this owning proxy alive
        kind: IndexKind
        if isinstance(raw, faiss.IndexIVFFlat):
            kind = "ivf"
            raw.set_direct_map_type(_HASHTABLE)
            raw.nprobe = min(int(options.get("ivf_nprobe", 16)), raw.nlist)
        elif isinstance(raw, faiss.IndexIDMap2):
            inner = faiss.downcast_index(raw.index)
            kind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"
        else:
            raise ValueError(f"{path} holds an unexpected FAISS index ({type(raw).__name__})")
        if options.get("kind", kind) != kind:
            raise ValueError(f"{path} holds a {kind} index, {options['kind']} was asked for")
        options["kind"] = kind
        index = cls(raw.d, **options)
        index._index = index._to_device(raw)
        return index
