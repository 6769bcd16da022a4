"""Collection: SQLite + FAISS kept in step — round trips, rebuilds, rollback, cross-process sync."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.collection import Collection, DocumentNotFoundError, EmbedderMismatchError
from app.collection_config import CollectionConfig
from app.parsing import Chunking, ParsedDocument, parse_text
from app.prepared import prepare
from app.settings import Settings
from index import Embedder, VectorIndex

DOCS = [
    ("Volcanoes", "Volcanoes erupt molten rock called lava. Mount Etna is in Sicily."),
    ("Rivers", "The Nile flows north into the Mediterranean. It is very long."),
    ("Deserts", "The Sahara is a hot desert. The Atacama is one of the driest places."),
]


def _parsed() -> list[tuple[ParsedDocument, str]]:
    return [(parse_text(t, x), "json") for t, x in DOCS]


def _top_title(coll: Collection, embedder: Embedder, question: str) -> str:
    chunk, _ = coll.search(embedder.encode([question])[0], 1)[0]
    record = coll.store.get_document(chunk.document_id)
    assert record is not None
    return record.title


def test_save_load_round_trip_and_rebuild(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    coll.ingest(_parsed())
    ids = coll.store.chunk_ids()
    coll.close()

    reopened = Collection.open(
        CollectionConfig.of(settings), embedder
    )  # loads faiss.index as saved
    assert reopened.index.matches(ids)
    assert _top_title(reopened, embedder, "Where is Mount Etna?") == "Volcanoes"
    reopened.close()

    settings.index_path.unlink()  # missing file → rebuilt from SQLite
    rebuilt = Collection.open(CollectionConfig.of(settings), embedder)
    assert rebuilt.index.matches(ids) and settings.index_path.exists()
    rebuilt.close()

    settings.index_path.write_bytes(b"not a faiss file")  # corrupt file → rebuilt
    assert Collection.open(CollectionConfig.of(settings), embedder).index.matches(ids)

    stale = VectorIndex(embedder.dim)  # inconsistent ids → rebuilt
    stale.add(np.array([999_999]), embedder.encode(["x"]))
    stale.save(settings.index_path)
    assert Collection.open(CollectionConfig.of(settings), embedder).index.matches(ids)


def test_index_kind_switch_rebuilds(settings: Settings, embedder: Embedder) -> None:
    Collection.open(CollectionConfig.of(settings), embedder).ingest(_parsed())
    hnsw = Collection.open(
        CollectionConfig.of(settings.model_copy(update={"index_kind": "hnsw"})), embedder
    )
    assert hnsw.index.kind == "hnsw" and hnsw.index.ntotal == hnsw.store.count_chunks()
    assert _top_title(hnsw, embedder, "Which river flows into the Mediterranean?") == "Rivers"


def test_failed_indexing_rolls_back(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    coll.ingest(_parsed()[:1])

    def broken_add(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(coll.index, "add", broken_add)
    with pytest.raises(OSError, match="disk full"):
        coll.ingest(_parsed()[1:])
    assert coll.store.count_documents() == 1
    assert coll.index.matches(coll.store.chunk_ids())


def test_delete_and_missing(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    results = coll.ingest(_parsed())
    coll.delete(results[0].document.id)
    assert coll.index.matches(coll.store.chunk_ids())
    assert _top_title(coll, embedder, "Where is Mount Etna?") != "Volcanoes"
    with pytest.raises(DocumentNotFoundError):
        coll.delete(results[0].document.id)


def test_second_process_writes_are_picked_up(settings: Settings, embedder: Embedder) -> None:
    server = Collection.open(CollectionConfig.of(settings), embedder)
    server.ingest(_parsed()[:1])
    cli = Collection.open(
        CollectionConfig.of(settings), embedder
    )  # e.g. `sieve ingest` next to a running server
    [added] = cli.ingest(_parsed()[1:2])
    assert _top_title(server, embedder, "Which river flows north?") == "Rivers"
    cli.delete(added.document.id)
    assert server.store.count_documents() == 1
    assert _top_title(server, embedder, "Which river flows north?") == "Volcanoes"
    assert server.index.matches(server.store.chunk_ids())


def test_duplicate_in_one_batch_is_stored_once(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    first, second = coll.ingest(_parsed()[:1] * 2)
    assert not first.duplicate and second.duplicate and first.document.id == second.document.id
    assert coll.index.ntotal == coll.store.count_chunks()


def test_other_embedder_is_refused(settings: Settings, embedder: Embedder) -> None:
    Collection.open(CollectionConfig.of(settings), embedder).ingest(_parsed()[:1])
    other = Embedder(model_path=embedder.model_path or "/elsewhere/model")
    other._model = embedder.model  # same weights, different configured identity
    with pytest.raises(EmbedderMismatchError, match="same model"):
        Collection.open(CollectionConfig.of(settings), other)


def test_crash_before_index_save_is_reconciled(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    coll.ingest(_parsed()[:1])
    coll.close()  # writes the index
    crashed = Collection.open(CollectionConfig.of(settings), embedder)
    crashed.ingest(_parsed()[1:])  # interval not reached: index file not rewritten
    crashed.store.close()  # "killed" without close(): the file misses the last documents
    reopened = Collection.open(CollectionConfig.of(settings), embedder)
    assert reopened.index.matches(reopened.store.chunk_ids())
    assert _top_title(reopened, embedder, "Which desert is hot?") == "Deserts"


def test_ivf_retrains_when_it_outgrows_its_lists(settings: Settings, embedder: Embedder) -> None:
    ivf = settings.model_copy(update={"index_kind": "ivf", "ivf_nlist": 8})
    coll = Collection.open(CollectionConfig.of(ivf), embedder)
    coll.ingest(_parsed())
    assert coll.index.nlist == 1  # 3 chunks: one list
    many = [
        (parse_text(f"Doc {i}", f"Fact number {i} is about item {i}."), "json") for i in range(80)
    ]
    coll.ingest(many)
    assert coll.index.nlist == 2 and coll.index.matches(coll.store.chunk_ids())


def test_index_of_other_dimension_is_rebuilt(settings: Settings, embedder: Embedder) -> None:
    Collection.open(CollectionConfig.of(settings), embedder).close()
    wrong = VectorIndex(8)
    wrong.save(settings.index_path)
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    assert coll.index.dim == embedder.dim
    coll.ingest(_parsed()[:1])


def test_external_id_replaces_everywhere(settings: Settings, embedder: Embedder) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    [old] = coll.ingest([(parse_text("Etna", DOCS[0][1]), "v1.txt")], ["volcano"])
    new_text = "Mount Fuji is the highest volcano in Japan. It last erupted in 1707."
    [new] = coll.ingest([(parse_text("Fuji", new_text), "v2.txt")], ["volcano"])
    assert new.replaced == old.document.id and not new.duplicate
    assert coll.store.count_documents() == 1 and coll.store.get_document(old.document.id) is None
    assert coll.index.matches(coll.store.chunk_ids())
    assert coll.lexical.ids().tolist() == coll.store.chunk_ids().tolist()
    assert "e:mount etna" not in coll.graph.g and "e:mount fuji" in coll.graph.g
    assert _top_title(coll, embedder, "Which volcano is in Japan?") == "Fuji"
    [again] = coll.ingest([(parse_text("Fuji", new_text), "v2.txt")], ["volcano"])
    assert again.duplicate and again.document.id == new.document.id  # same content: a no-op


def test_failed_replacement_restores_the_old_document(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    [old] = coll.ingest([(parse_text("Etna", DOCS[0][1]), "v1.txt")], ["volcano"])

    def broken(*_: object) -> None:
        raise RuntimeError("lexical index exploded")

    monkeypatch.setattr(coll.lexical, "add", broken)
    new_text = "Mount Fuji is the highest volcano in Japan."
    with pytest.raises(RuntimeError, match="exploded"):
        coll.ingest([(parse_text("Fuji", new_text), "v2.txt")], ["volcano"])
    monkeypatch.undo()
    [doc] = coll.store.list_documents()
    assert (doc.id, doc.external_id, doc.title) == (old.document.id, "volcano", "Etna")
    coll.sync(force=True)
    assert coll.index.matches(coll.store.chunk_ids())
    assert _top_title(coll, embedder, "Where is Mount Etna?") == "Etna"


def test_short_documents_share_embedding_calls() -> None:
    from types import SimpleNamespace

    from app.prepared import EMBED_GROUP_CHUNKS, embed_groups

    docs = [SimpleNamespace(chunks=[0] * n) for n in (1, 30, 40, 70, 2, 3)]
    groups = list(embed_groups(docs))  # type: ignore[arg-type]
    assert [len(g) for g in groups] == [3, 1, 2]  # 71 chunks, 70, then the rest
    assert all(sum(len(d.chunks) for d in g) >= EMBED_GROUP_CHUNKS for g in groups[:-1])
    assert [d for g in groups for d in g] == docs and list(embed_groups([])) == []


def test_a_data_dir_embedded_in_another_precision_is_flagged(
    tmp_path: Path,
    embedder: Embedder,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from app.collection import _check_embedder
    from index import DocumentStore

    store = DocumentStore(tmp_path / "s.db")
    _check_embedder(store, embedder)  # empty: the precision is recorded
    assert store.get_meta("embedder_precision") == "fp32"
    monkeypatch.setattr(store, "count_chunks", lambda *a: 5)  # as if it held chunks
    int8 = SimpleNamespace(model_path=None, dim=embedder.dim, precision="int8")
    _check_embedder(store, int8)  # type: ignore[arg-type]
    assert "embedded in fp32" in caplog.text and "runs in int8" in caplog.text
    assert store.get_meta("embedder_precision") == "fp32"  # the vectors did not change


def test_vectors_embedded_elsewhere_are_stored_as_given(
    settings: Settings, embedder: Embedder
) -> None:
    """``sieve ingest --ray`` embeds in its workers: the collection stores those vectors (and
    refuses matrices of the wrong shape before anything is stored)."""
    config = CollectionConfig.of(settings)
    coll = Collection.open(config, embedder)
    prepared = [prepare(parsed, source, config.chunking) for parsed, source in _parsed()]
    vectors = [embedder.encode(p.texts()) for p in prepared]
    with pytest.raises(ValueError, match="expected"):
        coll.ingest_prepared(prepared, [v[:, :10] for v in vectors])
    assert coll.store.count_documents() == 0
    results = coll.ingest_prepared(prepared, vectors)
    assert [r.duplicate for r in results] == [False, False, False]
    assert _top_title(coll, embedder, "Where is Mount Etna?") == "Volcanoes"
    assert coll.stored_hashes(prepared) == {p.content_hash for p in prepared}
    again = coll.ingest_prepared(prepared)  # resumed: nothing embedded or stored twice
    assert [r.duplicate for r in again] == [True, True, True]
    _, stored = coll.store.embeddings_for(coll.store.chunk_ids())
    assert np.allclose(stored, np.concatenate(vectors), atol=1e-6)  # in id (= ingest) order


def test_the_same_content_twice_in_one_call_is_stored_once_as_the_first(
    settings: Settings, embedder: Embedder
) -> None:
    coll = Collection.open(CollectionConfig.of(settings), embedder)
    parsed = parse_text("Twice", "The same text arrives in two files of one batch.")
    first, second = coll.ingest([(parsed, "a.txt"), (parsed, "b.txt")])
    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.document.id == second.document.id and first.document.source == "a.txt"
    assert coll.store.count_documents() == 1


def test_documents_chunked_otherwise_are_cut_again(settings: Settings, embedder: Embedder) -> None:
    """A document prepared with other chunk sizes (e.g. a job queued before a restart with new
    settings) is cut as the collection cuts; vectors made for the other cut are refused."""
    config = CollectionConfig.of(settings)
    coll = Collection.open(config, embedder)
    text = " ".join(f"Sentence number {i} talks about the Velmor lighthouse." for i in range(60))
    other = Chunking(target_words=20, max_words=30)
    prepared = prepare(parse_text("Long", text), "long.txt", other)
    assert len(prepared.chunks) > len(config.chunking.chunks(prepared.parsed))
    with pytest.raises(ValueError, match="chunked otherwise"):
        coll.ingest_prepared([prepared], [embedder.encode(prepared.texts())])
    assert coll.store.count_documents() == 0
    [result] = coll.ingest_prepared([prepared])
    assert result.document.chunk_count == len(config.chunking.chunks(prepared.parsed))


def test_prepared_chunks_keep_every_sentence_compactly(settings: Settings) -> None:
    """A prepared document keeps its sentences as flat offsets (it waits in memory between an
    upload's check and its job): the same sentences, pages and headings as the chunker's."""
    text = "# Lights\n\n" + " ".join(f"Keeper {i} lit the lamp." for i in range(400))
    parsed = parse_text("Lights", text, "md")
    prepared = prepare(parsed, "lights.md", settings.chunking)
    drafts = settings.chunking.chunks(parsed)
    assert len(prepared.chunks) == len(drafts) > 1
    for chunk, draft in zip(prepared.chunks, drafts, strict=True):
        assert chunk.sentences() == [(s.start, s.end) for s in draft.sentences]
        assert (chunk.heading_path, chunk.page) == (draft.heading_path, draft.page)
    spans = sum(len(d.sentences) for d in drafts)
    assert prepared.footprint() < len(text) + 200 * len(drafts) + 16 * spans + 100
