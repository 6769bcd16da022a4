"""BM25 over chunks (bm25s), kept in step with the document store.

bm25s builds a static sparse score matrix, so the index keeps each chunk's tokens and rebuilds
the matrix lazily, at the first search after an add or delete (a vectorised pass over token ids:
well under a second for 100k chunks). The tokens are persisted as one ``.npz`` file written
atomically; SQLite stays the source of truth and the owner reconciles the two at open.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from index.records import SearchHit

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stopwords; a light plural fold (``cities`` →
    ``city``, ``dogs`` → ``dog``) so singular and plural forms match."""
    out = []
    for word in _WORD.findall(text.casefold()):
        if word in _STOP:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        out.append(word)
    return out


class LexicalIndex:
    """Chunk id → tokens, and a BM25 matrix built from them on demand. Thread-safe."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._tokens: dict[int, list[str]] = {}
        self._lock = threading.RLock()
        self._bm25: bm25s.BM25 | None = None
        self._row_ids = np.zeros(0, dtype=np.int64)  # matrix row → chunk id

    # ---- writes ---------------------------------------------------------------------------
    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        tokens = [tokenize(t) for t in texts]
        with self._lock:
            for i, t in zip(ids, tokens, strict=True):
                self._tokens[int(i)] = t
            self._bm25 = None

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                self._tokens.pop(int(i), None)
            self._bm25 = None

    # ---- reads ----------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return len(self._tokens)

    def ids(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._tokens, dtype=np.int64, count=len(self._tokens))

    def search(self, query: str, k: int) -> list[SearchHit]:
        """Top-k chunks by BM25, best first; chunks sharing no query term are left out."""
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        words = tokenize(query)
        with self._lock:
            bm25, row_ids = self._matrix()
        if bm25 is None or not words:
            return []
        vocab = bm25.vocab_dict
        known = [vocab[w] for w in dict.fromkeys(words) if w in vocab]
        if not known:
            return []
        scores = bm25.get_scores_from_ids(known)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [SearchHit(int(row_ids[r]), float(scores[r])) for r in top]

    def _matrix(self) -> tuple[bm25s.BM25 | None, np.ndarray]:
        if self._bm25 is None and self._tokens:
            row_ids = np.fromiter(self._tokens, dtype=np.int64, count=len(self._tokens))
            vocab: dict[str, int] = {}
            corpus = [
                [vocab.setdefault(w, len(vocab)) for w in self._tokens[int(i)]] for i in row_ids
            ]
            vocab.setdefault("", len(vocab))  # bm25s scores token-less chunks with it
            bm25 = bm25s.BM25(k1=self.k1, b=self.b)
            bm25.index((corpus, vocab), show_progress=False)
            self._bm25, self._row_ids = bm25, row_ids
        return self._bm25, self._row_ids

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the tokens atomically (temp file + rename) as one ``.npz``."""
        with self._lock:
            ids = np.fromiter(self._tokens, dtype=np.int64, count=len(self._tokens))
            vocab: dict[str, int] = {}
            flat = np.fromiter(
                (vocab.setdefault(w, len(vocab)) for i in ids for w in self._tokens[int(i)]),
                dtype=np.int32,
            )
            lengths = np.array([len(self._tokens[int(i)]) for i in ids], dtype=np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, ids=ids, lengths=lengths, tokens=flat, vocab=np.array(list(vocab)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """Read a file written by :meth:`save`; raises ``ValueError`` when it is unusable."""
        try:
            with np.load(path, allow_pickle=False) as data:
                ids, lengths = data["ids"], data["lengths"]
                flat, vocab = data["tokens"], data["vocab"].tolist()
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"cannot read lexical index {path}: {exc}") from exc
        if len(ids) != len(lengths) or int(lengths.sum()) != len(flat):
            raise ValueError(f"lexical index {path} is inconsistent")
        index = cls()
        words = np.array(vocab, dtype=object) if vocab else np.zeros(0, dtype=object)
        ends = np.cumsum(lengths)
        for i, end, n in zip(ids.tolist(), ends.tolist(), lengths.tolist(), strict=True):
            index._tokens[i] = words[flat[end - n : end]].tolist()
        return index
