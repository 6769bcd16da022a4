"""What one collection needs to know: where its files are and how to build its indexes.

A small frozen value made once from the settings (:meth:`CollectionConfig.of`), so that a
:class:`~app.collection.Collection` depends on its own configuration, not on the whole
``Settings``, and can be built wherever the config can be sent (another process, a Ray actor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.names import DEFAULT_COLLECTION_NAME as DEFAULT_COLLECTION
from app.parsing import Chunking
from app.settings import Settings


@dataclass(frozen=True)
class CollectionPaths:
    """Where one collection keeps its derived files (FAISS, BM25, graph). The default
    collection keeps the data dir's top-level files (as before collections existed)."""

    index: Path
    lexical: Path
    graph: Path

    @classmethod
    def of(cls, settings: Settings, collection: str) -> CollectionPaths:
        if collection == DEFAULT_COLLECTION:
            return cls(settings.index_path, settings.lexical_path, settings.graph_path)
        base = settings.data_dir / "collections" / collection
        return cls(base / "faiss.index", base / "bm25.npz", base / "graph.npz")


@dataclass(frozen=True)
class CollectionConfig:
    name: str
    db_path: Path  # the data dir's SQLite file (shared by all its collections)
    paths: CollectionPaths
    index_kind: Literal["flat", "hnsw", "ivf"]
    hnsw_m: int
    ivf_nlist: int
    ivf_nprobe: int
    faiss_gpu: bool
    graph: bool  # keep a knowledge graph (else the graph channel finds nothing)
    graph_merge_threshold: float
    graph_synonym_threshold: float
    chunking: Chunking
    save_interval_s: float  # derived files are written at most this often (and at close)

    @classmethod
    def of(cls, settings: Settings, name: str = DEFAULT_COLLECTION) -> CollectionConfig:
        return cls(
            name=name,
            db_path=settings.db_path,
            paths=CollectionPaths.of(settings, name),
            index_kind=settings.index_kind,
            hnsw_m=settings.hnsw_m,
            ivf_nlist=settings.ivf_nlist,
            ivf_nprobe=settings.ivf_nprobe,
            faiss_gpu=settings.faiss_gpu,
            graph=settings.graph,
            graph_merge_threshold=settings.graph_merge_threshold,
            graph_synonym_threshold=settings.graph_synonym_threshold,
            chunking=settings.chunking,
            save_interval_s=settings.index_save_interval_s,
        )

    def index_options(self) -> dict[str, object]:
        return {
            "kind": self.index_kind,
            "hnsw_m": self.hnsw_m,
            "ivf_nlist": self.ivf_nlist,
            "ivf_nprobe": self.ivf_nprobe,
            "use_gpu": self.faiss_gpu,
        }

    def graph_options(self) -> dict[str, float]:
        return {
            "merge_threshold": self.graph_merge_threshold,
            "synonym_threshold": self.graph_synonym_threshold,
        }
