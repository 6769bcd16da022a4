from pathlib import Path

import numpy as np
import pytest

from index import MINILM_SHA256, CachedEncoder, Embedder, ModelIntegrityError, bundled_model_path
from index.embedder import sha256_file


def test_bundled_weights_have_the_official_checksum() -> None:
    assert sha256_file(bundled_model_path() / "model.safetensors") == MINILM_SHA256


def test_embeddings_are_unit_norm_and_semantic(embedder: Embedder) -> None:
    v = embedder.encode(["A cat sits on the mat.", "A kitten rests on a rug.", "Tax law in 1990."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_empty_input_gives_empty_matrix(embedder: Embedder) -> None:
    assert embedder.encode([]).shape == (0, 384)


def test_checksum_mismatch_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Embedder(bundled_model_path(), device="cpu", expected_sha256="0" * 64).load()


def test_token_counts(embedder: Embedder) -> None:
    assert embedder.count_tokens(["hello world", ""]) == [2, 0]


def test_cached_encoder_is_bounded_and_transparent(embedder: Embedder) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return embedder.encode(texts)

    cached = CachedEncoder(encode, size=2)
    first = cached(["a cat", "a dog", "a cat"])
    again = cached(["a dog", "a cat"])
    np.testing.assert_allclose(first[1], again[0], atol=1e-6)
    assert calls == [["a cat", "a dog"]]  # duplicates and repeats are not re-encoded
    cached(["a bird"])
    assert len(cached) == 2 and cached([]).shape == (0, 384)
