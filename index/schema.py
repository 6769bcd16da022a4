"""The SQLite schema of the document store, and its migrations (PRAGMA user_version)."""

from __future__ import annotations

import sqlite3

from index.rows import now

SCHEMA_VERSION = 2
DEFAULT_COLLECTION = "default"

# the documents table of schema v2 (also what the v1 migration builds)
_DOCUMENTS = """(
    id            TEXT PRIMARY KEY,
    collection    TEXT NOT NULL DEFAULT 'default' REFERENCES collections(name),
    external_id   TEXT,
    title         TEXT NOT NULL,
    source        TEXT NOT NULL,
    format        TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    text          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    chunk_count   INTEGER NOT NULL,
    char_count    INTEGER NOT NULL,
    UNIQUE (collection, content_hash),
    UNIQUE (collection, external_id)
)"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS collections (
    name          TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents {_DOCUMENTS};
CREATE TABLE IF NOT EXISTS chunks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection    TEXT NOT NULL DEFAULT 'default',
    ordinal       INTEGER NOT NULL,
    heading_path  TEXT NOT NULL,
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    page          INTEGER,
    text          TEXT NOT NULL,
    embedding     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id, ordinal);
CREATE INDEX IF NOT EXISTS chunks_collection ON chunks(collection, id);
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

# v1 (one global namespace, content_hash unique across everything) → v2 (collections): SQLite
# cannot change a UNIQUE constraint in place, so documents is rebuilt (the documented
# new-table / copy / drop / rename procedure) with foreign keys off, all in one transaction.
_MIGRATE_V1 = f"""
CREATE TABLE documents_v2 {_DOCUMENTS};
INSERT INTO documents_v2 (id, title, source, format, content_hash, text, metadata, created_at,
                          chunk_count, char_count)
    SELECT id, title, source, format, content_hash, text, metadata, created_at, chunk_count,
           char_count FROM documents ORDER BY rowid;
DROP TABLE documents;
ALTER TABLE documents_v2 RENAME TO documents;
ALTER TABLE chunks ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database to SCHEMA_VERSION in one transaction (foreign keys must be off)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= SCHEMA_VERSION:
        return
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        columns = {r[1] for r in cur.execute("PRAGMA table_info(documents)")}
        cur.execute(SCHEMA.split("CREATE TABLE IF NOT EXISTS documents")[0])  # collections
        if columns and "collection" not in columns:  # a v1 database with data
            for statement in _MIGRATE_V1.split(";"):
                if statement.strip():
                    cur.execute(statement)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                cur.execute(statement)
        cur.execute(
            "INSERT OR IGNORE INTO collections (name, created_at) VALUES (?, ?)",
            (DEFAULT_COLLECTION, now()),
        )
        problems = cur.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise sqlite3.IntegrityError(f"migration left dangling rows: {problems[:3]}")
        cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
