"""BM25 lexical index: search, updates, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import LexicalIndex, tokenize

TEXTS = {
    1: "The Moon orbits the Earth every 27 days.",
    2: "Mars has two small moons called Phobos and Deimos.",
    3: "Jupiter is the largest planet of the solar system.",
}


@pytest.fixture
def index() -> LexicalIndex:
    idx = LexicalIndex()
    idx.add(list(TEXTS), list(TEXTS.values()))
    return idx


def test_tokenize_drops_stopwords_and_folds_plurals() -> None:
    assert tokenize("The cities of Mars and the moons") == ["city", "mar", "moon"]


def test_search_ranks_by_bm25(index: LexicalIndex) -> None:
    hits = index.search("Which moons does Mars have?", 3)
    assert hits[0].chunk_id == 2 and all(h.score > 0 for h in hits)
    assert [h.chunk_id for h in index.search("largest planet", 5)] == [3]


def test_queries_with_no_known_term_find_nothing(index: LexicalIndex) -> None:
    assert index.search("the of and", 5) == []
    assert index.search("zzyzx", 5) == []
    assert LexicalIndex().search("moon", 5) == []


def test_add_and_remove_take_effect(index: LexicalIndex) -> None:
    index.remove([2])
    assert all(h.chunk_id != 2 for h in index.search("Mars moons", 5))
    index.add([7], ["Saturn has many moons, among them Titan."])
    assert index.search("Titan", 5)[0].chunk_id == 7
    assert sorted(index.ids().tolist()) == [1, 3, 7]


def test_save_load_round_trip(index: LexicalIndex, tmp_path: Path) -> None:
    path = tmp_path / "bm25.npz"
    index.save(path)
    loaded = LexicalIndex.load(path)
    for q in ("moons of Mars", "Earth", "solar system planet"):
        assert loaded.search(q, 3) == index.search(q, 3)
    LexicalIndex().save(path)  # empty index round trip
    assert LexicalIndex.load(path).ntotal == 0


def test_unreadable_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "bm25.npz"
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read lexical index"):
        LexicalIndex.load(path)
