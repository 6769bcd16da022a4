"""The data dir's collections: one shared SQLite store, and per collection its own FAISS
index, BM25 index and knowledge graph (a :class:`Library`), opened on first use.

Separate derived indexes per collection make isolation structural: a search in one collection
cannot return another's vectors, terms or graph nodes, whatever the query.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from app.library import Library
from app.names import NAME_PATTERN
from app.settings import Settings
from index import DEFAULT_COLLECTION, CollectionInfo, DocumentStore, Embedder
from index import UnknownCollectionError as UnknownCollectionError

_NAME = re.compile(NAME_PATTERN)


class InvalidCollectionNameError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"invalid collection name {name[:80]!r}: use 1-64 lowercase letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):  # match() would let "name\n" through ($ before a newline)
        raise InvalidCollectionNameError(name)
    return name


class Collections:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = DocumentStore(settings.db_path)
        self._libraries: dict[str, Library] = {}
        self._lock = threading.Lock()
        # called with every library as it is opened (e.g. to hook the triple worker)
        self.on_open: Callable[[Library], None] | None = None

    @property
    def default(self) -> Library:
        return self.get(DEFAULT_COLLECTION)

    def get(self, name: str) -> Library:
        """The collection's library, opened (and reconciled with SQLite) on first use;
        ``UnknownCollectionError`` when no such collection was created."""
        library = self._libraries.get(name)
        if library is not None:
            return library
        with self._lock:
            library = self._libraries.get(name)
            if library is None:
                if not self.store.has_collection(name):
                    raise UnknownCollectionError(name)
                library = Library.open(self.settings, self.embedder, name, self.store)
                if self.on_open is not None:
                    self.on_open(library)
                self._libraries[name] = library
        return library

    def create(self, name: str) -> bool:
        """Create a collection (False when it exists already)."""
        return self.store.create_collection(check_name(name))

    def exists(self, name: str) -> bool:
        return self.store.has_collection(name)

    def names(self) -> list[str]:
        return self.store.collection_names()

    def infos(self) -> list[CollectionInfo]:
        return self.store.collections()

    def opened(self) -> list[Library]:
        return list(self._libraries.values())

    def save(self) -> None:
        for library in self.opened():
            library.save_index()

    def close(self) -> None:
        with self._lock:
            for library in self._libraries.values():
                library.close()
            self._libraries.clear()
            self.store.close()
