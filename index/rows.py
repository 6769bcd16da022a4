"""Row <-> record conversions and small SQL helpers shared by the store and its schema."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from index.records import ChunkRecord, DocumentRecord, SentenceRecord

DOC_COLUMNS = (
    "id, collection, external_id, title, source, format, content_hash, metadata, created_at,"
    " chunk_count, char_count"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def exists(cur: sqlite3.Cursor, collection: str) -> bool:
    return (
        cur.execute("SELECT 1 FROM collections WHERE name = ?", (collection,)).fetchone()
        is not None
    )


def scoped(sql: str, args: Sequence[object], collection: str | None) -> tuple[str, list[object]]:
    """``sql`` (ending in a WHERE clause) limited to one collection when one is given."""
    if collection is None:
        return sql, list(args)
    return f"{sql} AND collection = ?", [*args, collection]


CHUNK_COLUMNS = "id, document_id, ordinal, heading_path, start, end, page, text"


def document_of(row: sqlite3.Row) -> DocumentRecord:
    return DocumentRecord(
        id=row["id"],
        title=row["title"],
        source=row["source"],
        format=row["format"],
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        chunk_count=int(row["chunk_count"]),
        char_count=int(row["char_count"]),
        metadata=json.loads(row["metadata"]),
        collection=row["collection"],
        external_id=row["external_id"],
    )


def chunk_of(row: sqlite3.Row, sentences: list[tuple[int, int, int]]) -> ChunkRecord:
    base = int(row["start"])
    text = str(row["text"])
    return ChunkRecord(
        id=int(row["id"]),
        document_id=row["document_id"],
        ordinal=int(row["ordinal"]),
        heading_path=tuple(json.loads(row["heading_path"])),
        text=text,
        start=base,
        end=int(row["end"]),
        page=row["page"],
        sentences=[
            SentenceRecord(index=i, start=s, end=e, text=text[s - base : e - base])
            for i, s, e in sentences
        ],
    )
