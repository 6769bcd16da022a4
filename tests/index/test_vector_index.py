from pathlib import Path

import numpy as np
import pytest

from index import VectorIndex


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_add_search_remove_save_load(kind: str, tmp_path: Path) -> None:
    vectors = _unit(200)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = VectorIndex(16, kind=kind, ivf_nlist=4, ivf_nprobe=4)  # type: ignore[arg-type]
    index.add(ids, vectors)
    hits = index.search(vectors[5], 3)[0]
    assert hits[0].chunk_id == 1005 and hits[0].score == pytest.approx(1.0, abs=1e-4)

    assert index.remove(np.array([1005, 99999])) == 1
    assert 1005 not in [h.chunk_id for h in index.search(vectors[5], 10)[0]]
    assert index.ntotal == 199

    path = tmp_path / "faiss.index"
    index.save(path)
    loaded = VectorIndex.load(path, ivf_nprobe=4)
    assert loaded.kind == kind
    assert loaded.matches(np.setdiff1d(ids, [1005]))
    assert loaded.search(vectors[7], 1)[0][0].chunk_id == 1007
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temp file


def test_empty_index_and_bad_arguments() -> None:
    index = VectorIndex(8)
    assert index.search(np.ones(8, dtype=np.float32), 5) == [[]]
    with pytest.raises(ValueError, match="k must be > 0"):
        index.search(np.ones(8, dtype=np.float32), 0)
    with pytest.raises(ValueError, match="shape"):
        index.add(np.array([1]), np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="index kind"):
        VectorIndex(8, kind="lsh")  # type: ignore[arg-type]


def test_load_refuses_other_kind(tmp_path: Path) -> None:
    index = VectorIndex(16, kind="hnsw")
    index.add(np.arange(3), _unit(3))
    index.save(tmp_path / "i")
    with pytest.raises(ValueError, match="hnsw"):
        VectorIndex.load(tmp_path / "i", kind="flat")
