from pathlib import Path

import numpy as np

from index import DocumentStore, NewChunk, NewDocument

TEXT = "Alpha one. Alpha two. Beta three."


def _doc(doc_id: str, text: str = TEXT, digest: str = "h1") -> NewDocument:
    vec = np.ones(4, dtype=np.float32).tobytes()
    return NewDocument(
        id=doc_id,
        title="T",
        source="t.txt",
        format="txt",
        content_hash=digest,
        text=text,
        chunks=[
            NewChunk(("A",), [(0, 10), (11, 21)], vec),
            NewChunk(("B",), [(22, 33)], vec, page=2),
        ],
        metadata={"k": "v"},
    )


def test_add_get_delete_round_trip(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    [stored] = store.add_documents([_doc("d1")])
    assert not stored.duplicate and len(stored.chunk_ids) == 2
    assert stored.record.chunk_count == 2 and stored.record.metadata == {"k": "v"}
    chunks = store.chunks_of("d1")
    assert [c.text for c in chunks] == ["Alpha one. Alpha two.", "Beta three."]
    assert [s.text for s in chunks[0].sentences] == ["Alpha one.", "Alpha two."]
    assert chunks[1].page == 2 and chunks[1].heading_path == ("B",)
    for c in chunks:
        for s in c.sentences:
            assert TEXT[s.start : s.end] == s.text
    store.close()

    reopened = DocumentStore(tmp_path / "s.db")  # persisted
    assert reopened.get_chunks(list(reversed(stored.chunk_ids)))[0].id == stored.chunk_ids[1]
    ids, vecs = reopened.embeddings_for(stored.chunk_ids)
    assert ids.tolist() == stored.chunk_ids and vecs.shape == (2, 4)
    assert reopened.delete_document("d1") == stored.chunk_ids
    assert reopened.get_document("d1") is None and reopened.count_chunks() == 0
    assert reopened.delete_document("d1") is None


def test_duplicates_by_content_hash(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    first, again = store.add_documents([_doc("d1"), _doc("d2")])
    assert not first.duplicate and again.duplicate and again.record.id == "d1"
    assert store.count_documents() == 1


def test_chunk_ids_are_never_reused(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    [a] = store.add_documents([_doc("d1")])
    store.delete_document("d1")
    [b] = store.add_documents([_doc("d2", digest="h2")])
    assert min(b.chunk_ids) > max(a.chunk_ids)
