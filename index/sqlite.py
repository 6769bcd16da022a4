"""SQLite connections as every store of the data dir's file opens them (the documents', the
jobs', the keys'): shared between threads behind the owner's lock, autocommit outside explicit
transactions, WAL, and one write transaction at a time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0  # how long a write waits for another connection's transaction


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def write_transaction(
    conn: sqlite3.Connection, lock: threading.Lock | threading.RLock
) -> Iterator[sqlite3.Cursor]:
    """One write transaction on ``conn`` under ``lock`` (BEGIN IMMEDIATE … COMMIT / ROLLBACK)."""
    with lock:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
