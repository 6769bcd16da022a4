"""Collections and external ids in the SQLite store: the v1 → v2 migration of an existing
database, per-collection dedup and reads, replacement by external id and its undo."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from index import DocumentStore, NewChunk, NewDocument
from index.store import (
    SCHEMA_VERSION,
    ContentConflictError,
    UnknownCollectionError,
)

TEXT = "Alpha one. Alpha two. Beta three."
OTHER = "Gamma four. Delta five."

# The schema before collections (git HEAD before v2): one global namespace, content_hash
# unique across everything, no collection or external_id columns, user_version left at 0.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    source        TEXT NOT NULL,
    format        TEXT NOT NULL,
    content_hash  TEXT NOT NULL UNIQUE,
    text          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    chunk_count   INTEGER NOT NULL,
    char_count    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    heading_path  TEXT NOT NULL,
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    page          INTEGER,
    text          TEXT NOT NULL,
    embedding     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id, ordinal);
CREATE TABLE IF NOT EXISTS sentences (
    chunk_id      INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    PRIMARY KEY (chunk_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL
);
"""


def _vec(value: float = 1.0) -> bytes:
    return np.full(4, value, dtype=np.float32).tobytes()


def _doc(
    doc_id: str,
    text: str = TEXT,
    digest: str = "h1",
    collection: str = "default",
    external_id: str | None = None,
) -> NewDocument:
    if text == TEXT:  # two chunks: two sentences, then one (on page 2)
        chunks = [
            NewChunk(("A",), [(0, 10), (11, 21)], _vec()),
            NewChunk(("B",), [(22, 33)], _vec(2), page=2),
        ]
    else:
        chunks = [NewChunk(("A",), [(0, len(text))], _vec())]
    return NewDocument(
        id=doc_id,
        title=f"T {doc_id}",
        source="t.txt",
        format="txt",
        content_hash=digest,
        text=text,
        chunks=chunks,
        metadata={"k": doc_id},
        collection=collection,
        external_id=external_id,
    )


def _count(db: Path, table: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _v1_database(db: Path) -> dict[str, list[int]]:
    """A v1 file with two documents (three chunks, with sentences) and a deleted one, so that
    chunk ids start past 1 and the AUTOINCREMENT counter matters. Returns chunk ids per doc."""
    chunk_ids: dict[str, list[int]] = {}
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("PRAGMA foreign_keys=ON")
        docs = [("gone", "g" * 64, "Gone."), ("d1", "a" * 64, TEXT), ("d2", "b" * 64, OTHER)]
        for doc_id, digest, text in docs:
            parts = [(0, 21), (22, len(text))] if text == TEXT else [(0, len(text))]
            conn.execute(
                "INSERT INTO documents VALUES (?, ?, 'x.txt', 'txt', ?, ?, ?, "
                "'2024-01-01T00:00:00+00:00', ?, ?)",
                (
                    doc_id,
                    f"Title {doc_id}",
                    digest,
                    text,
                    f'{{"k": "{doc_id}"}}',
                    len(parts),
                    len(text),
                ),
            )
            for ordinal, (start, end) in enumerate(parts):
                cur = conn.execute(
                    "INSERT INTO chunks (document_id, ordinal, heading_path, start, end, page,"
                    " text, embedding) VALUES (?, ?, '[\"H\"]', ?, ?, NULL, ?, ?)",
                    (doc_id, ordinal, start, end, text[start:end], _vec(ordinal + 1)),
                )
                chunk_id = int(cur.lastrowid or 0)
                chunk_ids.setdefault(doc_id, []).append(chunk_id)
                conn.execute("INSERT INTO sentences VALUES (?, 0, ?, ?)", (chunk_id, start, end))
        conn.execute("INSERT INTO meta VALUES ('embedder', 'minilm')")
        conn.execute("DELETE FROM documents WHERE id = 'gone'")
        conn.commit()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    del chunk_ids["gone"]
    return chunk_ids


# ---- migration ----------------------------------------------------------------------------


def test_v1_database_migrates_into_the_default_collection(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    before = _v1_database(db)
    store = DocumentStore(db)
    try:
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            columns = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
            assert {"collection", "external_id"} <= columns
        assert [c.name for c in store.collections()] == ["default"]
        assert [d.id for d in store.list_documents(collection="default")] == ["d1", "d2"]
        d1 = store.get_document("d1", "default")
        assert d1 is not None and d1.collection == "default" and d1.external_id is None
        assert d1.title == "Title d1" and d1.metadata == {"k": "d1"} and d1.content_hash == "a" * 64
        assert store.count_documents("default") == 2 and store.count_chunks("default") == 3
        # chunk ids unchanged: the FAISS ids of the old index stay valid
        all_ids = before["d1"] + before["d2"]
        assert min(all_ids) > 1  # the deleted document's chunk came first
        assert store.chunk_ids("default").tolist() == all_ids
        assert [c.id for c in store.chunks_of("d1")] == before["d1"]
        chunks = store.get_chunks(all_ids, "default")
        assert [c.id for c in chunks] == all_ids
        assert [s.text for s in chunks[0].sentences] == ["Alpha one. Alpha two."]
        assert store.get_meta("embedder") == "minilm"
        # the new uniqueness rules hold: same hash in another collection is a new document
        store.create_collection("other")
        [copy] = store.add_documents([_doc("c1", digest="a" * 64, collection="other")], "other")
        assert not copy.duplicate and min(copy.chunk_ids) > max(all_ids)  # counter kept
        # foreign keys still cascade: chunks and sentences of a migrated document go with it
        sentences = _count(db, "sentences")
        assert store.delete_document("d1") == before["d1"]
        assert store.get_chunks(before["d1"]) == []
        assert _count(db, "sentences") == sentences - len(before["d1"])
    finally:
        store.close()

    reopened = DocumentStore(db)  # opening a v2 file again changes nothing
    try:
        assert [d.id for d in reopened.list_documents()] == ["d2", "c1"]
        assert reopened.chunk_ids("default").tolist() == before["d2"]
    finally:
        reopened.close()


def test_a_failed_migration_leaves_the_v1_file_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _v1_database(db)
    with closing(sqlite3.connect(db)) as conn:  # foreign keys off: a dangling chunk slips in
        conn.execute(
            "INSERT INTO chunks (document_id, ordinal, heading_path, start, end, text, embedding)"
            " VALUES ('ghost', 0, '[]', 0, 1, 'x', ?)",
            (_vec(),),
        )
        conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="dangling"):
        DocumentStore(db)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        columns = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
        assert "collection" not in columns
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "collections" not in tables and "documents_v2" not in tables
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 2


def test_fresh_database_is_v2(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "new.db")
    store.close()
    with closing(sqlite3.connect(tmp_path / "new.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert [r[0] for r in conn.execute("SELECT name FROM collections")] == ["default"]


# ---- collections --------------------------------------------------------------------------


def test_dedup_is_per_collection(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    assert store.create_collection("b") and not store.create_collection("b")
    [a] = store.add_documents([_doc("da")])
    [b] = store.add_documents([_doc("db", collection="b")], "b")
    assert not a.duplicate and not b.duplicate and b.record.collection == "b"
    [again] = store.add_documents([_doc("db2", collection="b")], "b")
    assert again.duplicate and again.record.id == "db"
    assert store.count_documents() == 2
    assert store.find_by_hash("h1", "b") == b.record
    assert store.find_by_hash("h1") == a.record
    with pytest.raises(ValueError, match="not in collection"):
        store.add_documents([_doc("dx", digest="h9", collection="b")])  # default collection


def test_reads_are_scoped_to_a_collection(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    store.create_collection("b")
    [a] = store.add_documents([_doc("da")])
    [b] = store.add_documents([_doc("db", OTHER, "h2", collection="b")], "b")
    assert store.get_document("db", "default") is None
    assert store.get_document("db", "b") == b.record and store.get_document("db") == b.record
    assert [d.id for d in store.list_documents(collection="b")] == ["db"]
    assert [d.id for d in store.list_documents(collection="default")] == ["da"]
    assert [d.id for d in store.list_documents()] == ["da", "db"]
    assert store.list_documents(collection="nope") == []
    assert (store.count_documents("b"), store.count_documents("default")) == (1, 1)
    assert (store.count_chunks("b"), store.count_chunks("default")) == (1, 2)
    assert store.chunk_ids("b").tolist() == b.chunk_ids
    assert store.chunk_ids("default").tolist() == a.chunk_ids
    both = a.chunk_ids + b.chunk_ids
    assert [c.id for c in store.get_chunks(both, "b")] == b.chunk_ids
    assert [c.id for c in store.get_chunks(both, "default")] == a.chunk_ids
    assert [c.id for c in store.get_chunks(both)] == both
    ids = [i for batch, _ in store.iter_embeddings(collection="b") for i in batch.tolist()]
    assert ids == b.chunk_ids
    infos = {c.name: (c.documents, c.chunks) for c in store.collections()}
    assert infos == {"default": (1, 2), "b": (1, 1)}


def test_unknown_collection_stores_nothing(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    with pytest.raises(UnknownCollectionError, match="nope"):
        store.add_documents([_doc("dn", collection="nope")], "nope")
    assert store.count_documents() == 0 and store.count_chunks() == 0
    assert not store.has_collection("nope")
    assert _count(store.path, "sentences") == 0


# ---- external ids -------------------------------------------------------------------------


def test_external_id_replaces_the_old_document(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    [first] = store.add_documents([_doc("d1", external_id="handbook")])
    [second] = store.add_documents([_doc("d2", OTHER, "h2", external_id="handbook")])
    assert not second.duplicate and second.record.external_id == "handbook"
    assert second.removed_chunk_ids == first.chunk_ids
    assert second.replaced is not None and second.replaced.id == "d1"
    assert second.replaced.text == TEXT and second.replaced.external_id == "handbook"
    assert store.get_document("d1") is None and store.get_chunks(first.chunk_ids) == []
    assert store.count_documents() == 1 and store.chunk_ids().tolist() == second.chunk_ids
    assert _count(store.path, "sentences") == 1
    found = store.find_by_external_id("handbook", "default")
    assert found is not None and found.id == "d2"

    [same] = store.add_documents([_doc("d3", OTHER, "h2", external_id="handbook")])
    assert same.duplicate and same.record.id == "d2" and same.replaced is None
    assert store.count_documents() == 1


def test_external_ids_are_per_collection(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    store.create_collection("b")
    store.add_documents([_doc("da", external_id="x")])
    [b] = store.add_documents([_doc("db", OTHER, "h2", "b", external_id="x")], "b")
    assert b.replaced is None and store.count_documents() == 2
    with pytest.raises(ValueError, match="same external id"):
        store.add_documents(
            [_doc("d3", digest="h3", external_id="y"), _doc("d4", OTHER, "h4", external_id="y")]
        )


def test_content_of_another_document_is_a_conflict(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    store.add_documents([_doc("plain")])  # same content, no external id
    store.add_documents([_doc("other", OTHER, "h2", external_id="e-other")])
    with pytest.raises(ContentConflictError) as caught:
        store.add_documents([_doc("d9", TEXT, "h1", external_id="e9")])
    assert caught.value.existing.id == "plain" and caught.value.external_id == "e9"
    with pytest.raises(ContentConflictError, match="e-other"):
        store.add_documents([_doc("d8", OTHER, "h2", external_id="e8")])
    # the whole batch rolled back: nothing new stored, nothing replaced
    with pytest.raises(ContentConflictError):
        store.add_documents(
            [_doc("d7", "Fresh text.", "h7"), _doc("d6", OTHER, "h2", external_id="e6")]
        )
    assert sorted(d.id for d in store.list_documents()) == ["other", "plain"]
    # a plain upload of content held under an external id is a duplicate of it
    [dup] = store.add_documents([_doc("d5", OTHER, "h2")])
    assert dup.duplicate and dup.record.id == "other"


def test_restore_undoes_a_replacement(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.db")
    store.create_collection("b")
    [old] = store.add_documents([_doc("d1", collection="b", external_id="e1")], "b")
    old_chunks = store.chunks_of("d1")
    [new] = store.add_documents([_doc("d2", OTHER, "h2", "b", external_id="e1")], "b")
    assert new.replaced is not None
    # indexing the new one failed: remove it and put the replaced one back
    assert store.delete_documents(["d2"]) == new.chunk_ids
    [back] = store.restore([new.replaced])
    assert back.record.id == "d1" and back.record.collection == "b"
    assert back.record.external_id == "e1" and back.record.metadata == {"k": "d1"}
    assert back.record.content_hash == old.record.content_hash
    assert store.get_text("d1") == TEXT
    restored = store.chunks_of("d1")
    assert len(restored) == len(old_chunks) and min(back.chunk_ids) > max(new.chunk_ids)
    for a, b in zip(restored, old_chunks, strict=True):
        assert (a.heading_path, a.text, a.start, a.end, a.page) == (
            b.heading_path,
            b.text,
            b.start,
            b.end,
            b.page,
        )
        assert [(s.start, s.end, s.text) for s in a.sentences] == [
            (s.start, s.end, s.text) for s in b.sentences
        ]
    ids, vecs = store.embeddings_for(back.chunk_ids)
    assert ids.tolist() == back.chunk_ids and vecs[1].tolist() == [2.0] * 4
    found = store.find_by_external_id("e1", "b")
    assert found is not None and found.id == "d1"
    assert store.chunk_ids("b").tolist() == back.chunk_ids
    # and it can be replaced again as usual
    [again] = store.add_documents([_doc("d3", OTHER, "h2", "b", external_id="e1")], "b")
    assert again.replaced is not None and again.removed_chunk_ids == back.chunk_ids
