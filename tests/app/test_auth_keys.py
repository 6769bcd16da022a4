"""API keys against a real SQLite file: create → authenticate, hashes at rest, revocation, two
stores on one file (as two workers would have), and the admin and bearer helpers."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from app.auth import ApiKey, KeyStore, bearer_token, check_admin
from index.store import DocumentStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sieve.db"


@pytest.fixture
def store(db: Path) -> Iterator[KeyStore]:
    keys = KeyStore(db)
    yield keys
    keys.close()


def test_create_then_authenticate_round_trip(store: KeyStore) -> None:
    record, plaintext = store.create("ci bot", "write", ["docs", "wiki"])
    assert plaintext.startswith(f"sieve_{record.id}_")
    assert plaintext.startswith(record.prefix) and len(record.prefix) < len(plaintext) // 2
    assert record.revoked_at is None and record.collections == ("docs", "wiki")
    assert store.authenticate(plaintext) == record
    assert store.get(record.id) == record
    other, other_plain = store.create("reader", "read", ["docs"])
    assert other_plain != plaintext and other.id != record.id
    assert store.authenticate(other_plain) == other


def test_roles_and_collections() -> None:
    writer = ApiKey("a", "w", "write", ("docs",), "2024-01-01T00:00:00+00:00", None, "sieve_a")
    reader = ApiKey("b", "r", "read", ("docs",), "2024-01-01T00:00:00+00:00", None, "sieve_b")
    assert writer.can_read("docs") and writer.can_write("docs")
    assert reader.can_read("docs") and not reader.can_write("docs")
    assert not writer.can_read("wiki") and not writer.can_write("wiki")
    revoked = ApiKey("c", "x", "write", ("docs",), "2024", "2024-02-01T00:00:00+00:00", "sieve_c")
    assert not revoked.can_read("docs") and not revoked.can_write("docs")


def test_only_the_hash_is_stored(store: KeyStore, db: Path) -> None:
    _, plaintext = store.create("ops", "read", ["docs"])
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    stored = [str(value) for value in rows[0]]
    assert hashlib.sha256(plaintext.encode()).hexdigest() in stored
    secret = plaintext.split("_", 2)[2]  # sieve_<id>_<secret>: the secret may hold "_"
    assert not any(plaintext in value or secret[-20:] in value for value in stored)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "sieve",
        "Bearer sieve_",
        "sieve_000000000000_" + "A" * 43,  # well formed, never issued
        "x" * 10_000_000,
        "sieve_" + "é" * 56,
        "sieve_\ud800" + "a" * 55,  # a lone surrogate cannot even be encoded
        "\x00" * 62,
    ],
)
def test_unknown_or_malformed_keys_are_refused(store: KeyStore, junk: str) -> None:
    store.create("ops", "read", ["docs"])
    assert store.authenticate(junk) is None


def test_a_changed_key_is_refused(store: KeyStore) -> None:
    record, plaintext = store.create("ops", "read", ["docs"])
    flipped = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    other_id = plaintext.replace(record.id, "0" * 12)
    for wrong in (flipped, other_id, plaintext.upper(), f" {plaintext}", plaintext + "x"):
        assert store.authenticate(wrong) is None


def test_revoke_takes_effect_at_once_and_is_idempotent(store: KeyStore) -> None:
    record, plaintext = store.create("ops", "write", ["docs"])
    assert store.authenticate(plaintext) == record  # now cached
    revoked = store.revoke(record.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert store.authenticate(plaintext) is None
    time.sleep(1.1)  # timestamps have whole seconds: a second revoke would differ
    again = store.revoke(record.id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert store.revoke("nope") is None
    assert store.get("nope") is None


def test_list_shows_prefixes_not_secrets(store: KeyStore) -> None:
    first, first_plain = store.create("one", "read", ["docs"])
    second, second_plain = store.create("two", "write", ["docs", "wiki"])
    store.revoke(first.id)
    listed = store.list()
    assert [k.id for k in listed] == [first.id, second.id]
    assert listed[0].revoked_at is not None and listed[1] == second
    for key, plain in zip(listed, (first_plain, second_plain), strict=True):
        assert plain.startswith(key.prefix)
        assert all(plain not in str(value) for value in vars(key).values())


def test_a_second_store_on_the_same_file(store: KeyStore, db: Path) -> None:
    record, plaintext = store.create("ops", "read", ["docs"])
    other = KeyStore(db, cache_ttl_s=0.2)
    try:
        assert other.list() == [record]
        assert other.authenticate(plaintext) == record  # cached for 0.2 s
        store.revoke(record.id)
        time.sleep(0.3)
        assert other.authenticate(plaintext) is None
        late, late_plain = other.create("late", "write", ["wiki"])
        assert store.authenticate(late_plain) == late  # refusals are not cached
    finally:
        other.close()


def test_keys_live_beside_the_document_store(db: Path) -> None:
    documents = DocumentStore(db)
    keys = KeyStore(db)
    try:
        record, plaintext = keys.create("ops", "read", ["docs"])
        assert documents.count_documents() == 0
        documents.set_meta("k", "v")
    finally:
        keys.close()
        documents.close()
    reopened = KeyStore(db)
    try:
        assert reopened.authenticate(plaintext) == record
    finally:
        reopened.close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("name", "role", "collections"),
    [
        ("", "read", ["docs"]),
        ("  ", "read", ["docs"]),
        ("ops", "admin", ["docs"]),
        ("ops", "read", []),
        ("ops", "read", [""]),
        ("ops", "read", ["docs", " "]),
        ("ops", "read", "docs"),  # a str would be read as its letters
    ],
)
def test_create_validates(store: KeyStore, name: str, role: str, collections: list[str]) -> None:
    with pytest.raises(ValueError):
        store.create(name, role, collections)  # type: ignore[arg-type]
    assert store.list() == []


def test_create_trims_and_dedupes(store: KeyStore) -> None:
    record, _ = store.create(" ops ", "read", ["docs", " docs", "wiki"])
    assert record.name == "ops" and record.collections == ("docs", "wiki")


def test_cache_ttl_is_bounded(db: Path) -> None:
    with pytest.raises(ValueError, match="cache_ttl_s"):
        KeyStore(db, cache_ttl_s=60)


def test_check_admin() -> None:
    assert check_admin("s3cret-admin", "s3cret-admin")
    assert not check_admin("s3cret-admiN", "s3cret-admin")
    assert not check_admin("", "s3cret-admin")
    assert not check_admin("", "")  # no admin key configured: nobody is admin
    assert not check_admin("anything", "")
    assert not check_admin("ключ\ud800", "s3cret-admin")
    assert check_admin("ключ", "ключ")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc  ", "abc"),
        ("  Bearer\tabc", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("Bearer a b", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
