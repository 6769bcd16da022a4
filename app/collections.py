"""The data dir's collections: one shared SQLite store, and per collection its own FAISS
index, BM25 index and knowledge graph (a :class:`Collection`), opened on first use.

Separate derived indexes per collection make isolation structural: a search in one collection
cannot return another's vectors, terms or graph nodes, whatever the query.
"""

from __future__ import annotations

import re
import threading

from app.collection import Collection, GraphHook
from app.collection_config import CollectionConfig
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
    def __init__(
        self, settings: Settings, embedder: Embedder, on_graph_added: GraphHook | None = None
    ) -> None:
        """``on_graph_added``: given to every collection opened (see :class:`Collection`)."""
        self.settings = settings
        self.embedder = embedder
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = DocumentStore(settings.db_path)
        self._opened: dict[str, Collection] = {}
        self._lock = threading.Lock()
        self._on_graph_added = on_graph_added

    @property
    def default(self) -> Collection:
        return self.get(DEFAULT_COLLECTION)

    def get(self, name: str) -> Collection:
        """The collection, opened (and reconciled with SQLite) on first use;
        ``UnknownCollectionError`` when no such collection was created."""
        coll = self._opened.get(name)
        if coll is not None:
            return coll
        with self._lock:
            coll = self._opened.get(name)
            if coll is None:
                if not self.store.has_collection(name):
                    raise UnknownCollectionError(name)
                config = CollectionConfig.of(self.settings, name)
                coll = Collection.open(config, self.embedder, self.store, self._on_graph_added)
                self._opened[name] = coll
        return coll

    def create(self, name: str) -> bool:
        """Create a collection (False when it exists already)."""
        return self.store.create_collection(check_name(name))

    def exists(self, name: str) -> bool:
        return self.store.has_collection(name)

    def names(self) -> list[str]:
        return self.store.collection_names()

    def infos(self) -> list[CollectionInfo]:
        return self.store.collections()

    def opened(self) -> list[Collection]:
        return list(self._opened.values())

    def close_one(self, name: str, expected: Collection | None = None) -> None:
        """Save and forget one open collection (it is opened again on its next use);
        ``expected``: only if that is the object open (not one opened again since)."""
        with self._lock:
            coll = self._opened.get(name)
            if coll is None or (expected is not None and coll is not expected):
                return
            del self._opened[name]
        coll.close()

    def save(self) -> None:
        for coll in self.opened():
            coll.save_index()

    def close(self) -> None:
        with self._lock:
            for coll in self._opened.values():
                coll.close()
            self._opened.clear()
            self.store.close()
