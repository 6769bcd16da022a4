"""API keys: each has a role (``read``, or ``write`` which implies read) on a set of collections.

Keys live in the ``api_keys`` table of the service's own SQLite file (WAL, shared with the
document store), so they survive restarts and every worker process sees the same set. A key is
``sieve_<id>_<secret>``: the id names it in listings and logs, the secret is 256 random bits.
Only the SHA-256 of the whole key is stored; the plaintext is returned once, by
:meth:`KeyStore.create`, and is never written anywhere.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

logger = logging.getLogger(__name__)

Role = Literal["read", "write"]
ROLES: tuple[str, ...] = get_args(Role)

KEY_SCHEME = "sieve"
ID_HEX_CHARS = 12  # 48 bits: short enough to read out, a collision needs millions of keys
SECRET_BYTES = 32  # 256 bits; token_urlsafe writes them as 43 characters
PREFIX_SECRET_CHARS = 4  # shown in listings: 24 of the 256 bits, recognisable yet useless
MAX_CACHE_TTL_S = 5.0  # a revoke made by another process takes effect within this

_KEY_RE = re.compile(
    rf"{KEY_SCHEME}_(?P<id>[0-9a-f]{{{ID_HEX_CHARS}}})_[A-Za-z0-9_-]{{43}}", re.ASCII
)
_KEY_LEN = len(KEY_SCHEME) + 1 + ID_HEX_CHARS + 1 + 43

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('read', 'write')),
    collections   TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
"""
_COLUMNS = "id, name, role, collections, prefix, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """A key as stored, without its secret. ``prefix`` is the start of the plaintext key, so an
    operator can tell which key a client holds; it is never enough to use it."""

    id: str
    name: str
    role: Role
    collections: tuple[str, ...]
    created_at: str  # ISO 8601 UTC
    revoked_at: str | None  # ISO 8601 UTC; a revoked key grants nothing
    prefix: str

    def can_read(self, collection: str) -> bool:
        return self.revoked_at is None and collection in self.collections

    def can_write(self, collection: str) -> bool:
        return self.role == "write" and self.can_read(collection)


class KeyStore:
    """The ``api_keys`` table of one SQLite file, through its own connection (thread-safe).

    :meth:`authenticate` remembers keys it accepted for ``cache_ttl_s`` so that a burst of
    requests costs one query; a revoke through this store drops them at once, one made by another
    process (or store) is seen within ``cache_ttl_s`` (0 turns the cache off). Refusals are never
    cached: a key created elsewhere works at once, and a refusal is one indexed lookup.
    """

    def __init__(self, path: str | Path, cache_ttl_s: float = 2.0) -> None:
        if not 0 <= cache_ttl_s <= MAX_CACHE_TTL_S:
            raise ValueError(f"cache_ttl_s must be in [0, {MAX_CACHE_TTL_S}], got {cache_ttl_s}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cache_ttl_s = cache_ttl_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKey, float]] = {}  # key hash → (key, expiry)
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._conn.close()

    def create(self, name: str, role: Role, collections: Sequence[str]) -> tuple[ApiKey, str]:
        """A new key with ``role`` on ``collections``: its record and its plaintext, which is
        shown this once and cannot be recovered (only its hash is stored)."""
        name = name.strip()
        if not name:
            raise ValueError("an API key needs a non-empty name")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if isinstance(collections, str):  # a str is a Sequence[str] of its letters
            raise ValueError(f"collections must be a list of names, got the string {collections!r}")
        names = tuple(dict.fromkeys(c.strip() for c in collections))
        if not names or "" in names:
            raise ValueError(f"an API key needs non-empty collection names, got {collections!r}")
        key_id = secrets.token_hex(ID_HEX_CHARS // 2)
        plaintext = f"{KEY_SCHEME}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        prefix = plaintext[: len(KEY_SCHEME) + ID_HEX_CHARS + 2 + PREFIX_SECRET_CHARS]
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, role, json.dumps(names), prefix, created, None, _hash(plaintext)),
            )
        logger.info("api key %s (%r) created: %s on %s", key_id, name, role, list(names))
        return ApiKey(key_id, name, role, names, created, None, prefix), plaintext

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key ``key`` is, or None (unknown, malformed or revoked). Never raises on
        what a client sends: the shape is checked before anything is hashed or queried."""
        if not isinstance(key, str) or len(key) != _KEY_LEN or not _KEY_RE.fullmatch(key):
            return None
        digest = _hash(key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and cached[1] > now:
                return cached[0]
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (digest,)
            ).fetchone()
            found = _api_key(row) if row is not None else None
            if found is None or found.revoked_at is not None:
                self._cache.pop(digest, None)
                return None
            if self.cache_ttl_s > 0:
                self._cache = {h: c for h, c in self._cache.items() if c[1] > now}
                self._cache[digest] = (found, now + self.cache_ttl_s)
        return found

    def get(self, key_id: str) -> ApiKey | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return _api_key(row) if row is not None else None

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key, at once for this store. Revoking it again keeps the first time;
        None when there is no such key."""
        revoked = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            changed = self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (revoked, key_id),
            ).rowcount
            self._cache = {h: c for h, c in self._cache.items() if c[0].id != key_id}
        if changed:
            logger.info("api key %s revoked", key_id)
        return self.get(key_id)

    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, rowid"
            ).fetchall()
        return [_api_key(row) for row in rows]


def check_admin(presented: str, admin_key: str) -> bool:
    """Whether ``presented`` is the admin key, in constant time. No admin key, no admin."""
    if not admin_key:
        return False
    return hmac.compare_digest(_encode(presented), _encode(admin_key))


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any case of the scheme), or
    None for a missing, empty or other header."""
    if not authorization_header:
        return None
    parts = authorization_header.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = parts[1].strip()
    return token if token and not any(c.isspace() for c in token) else None


def _hash(key: str) -> str:
    """SHA-256, unsalted and fast on purpose: the key is 256 random bits, so there is nothing to
    guess and slow hashing (bcrypt, argon2) would only slow every request. A fast, deterministic
    hash also lets the key be found by an indexed lookup of its hash."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate must not raise


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        collections=tuple(json.loads(row["collections"])),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        prefix=row["prefix"],
    )
