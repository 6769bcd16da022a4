"""The knowledge graph: documents → sections → chunks (concept layer) and entities (instance layer).

Nodes are strings: ``d:<document id>``, ``s:<document id>:<heading path>``, ``c:<chunk id>`` and
``e:<entity key>``. Edges (one undirected ``networkx.Graph``):

- document–section–chunk ``contains`` edges (a chunk with no heading hangs off its document);
- chunk–entity ``mentions`` edges, weighted by the mention count; a document's or section's
  title is an entity linked to that node (``titles``) and to each of its chunks (``about``):
  a page about an entity is the first place to look for it;
- entity–entity edges carrying ``cooc`` (sentences in which both occur), ``rel`` (typed
  relations, ``"subject|relation|object" → count``, from an LLM extractor) and ``synonym`` (the
  name-embedding similarity of two entities that resolution was unsure to merge).

What each chunk contributed is kept as a record, so deleting chunks removes exactly their
contribution (entities left without mentions disappear) and the whole graph can be replayed from
the records. Entity resolution: exact key match (through the alias table), then, for names, the
nearest existing entity by name embedding: merged above ``merge_threshold`` when the two names
share a word, a ``synonym`` edge above ``synonym_threshold`` otherwise.

Persisted as one ``.npz`` (records as JSON + entity vectors), written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graph.adjacency import Adjacency
from graph.extract import Mention, extract, normalise, title_mentions

Encoder = Callable[[Sequence[str]], np.ndarray]
FORMAT_VERSION = 1
_EMBEDDED_KINDS = {"name", "acronym", "quoted", "title"}  # dates and numbers: exact keys only


@dataclass(frozen=True)
class GraphChunk:
    """A stored chunk, as the graph needs it."""

    chunk_id: int
    document_id: str
    document_title: str
    heading_path: tuple[str, ...]
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Triple:
    subject: str
    relation: str
    object: str


# a chunk with its extracted mentions, title mentions and LLM triples
_Extracted = tuple[GraphChunk, list[Mention], list[Mention], list[Triple]]


@dataclass
class Contribution:
    """What one chunk put into the graph (entity keys after resolution)."""

    chunk_id: int
    document_id: str
    document_title: str
    section: list[str]
    mentions: list[list[Any]] = field(default_factory=list)  # [key, surface, kind, sentence]
    triples: list[list[str]] = field(default_factory=list)  # [subject key, relation, object key]


def doc_node(document_id: str) -> str:
    return f"d:{document_id}"


def chunk_node(chunk_id: int) -> str:
    return f"c:{chunk_id}"


def entity_node(key: str) -> str:
    return f"e:{key}"


def section_node(document_id: str, section: Sequence[str]) -> str:
    return f"s:{document_id}:{' / '.join(section)}" if section else doc_node(document_id)


class KnowledgeGraph:
    def __init__(
        self,
        encode: Encoder | None = None,
        merge_threshold: float = 0.93,
        synonym_threshold: float = 0.85,
    ) -> None:
        self.encode = encode
        self.merge_threshold = merge_threshold
        self.synonym_threshold = synonym_threshold
        self.g = nx.Graph()
        self.records: dict[int, Contribution] = {}
        self.aliases: dict[str, str] = {}  # merged key → canonical key
        # entity key → unit name vector, float16 (half the memory; the search matrix built from
        # them is float32)
        self.vectors: dict[str, np.ndarray] = {}
        self.lock = threading.RLock()
        self._sizes = (0, 0, 0)
        self.version = 0  # bumped on every change (caches key on it)
        self._matrix: tuple[int, list[str], np.ndarray] | None = None
        self._pending_synonyms: list[tuple[str, str, float]] = []  # (new key, existing, sim)
        self._adjacency: Adjacency | None = None
        self._entities = 0
        self._words: tuple[int, dict[str, list[int]]] | None = None

    # ---- sizes ----------------------------------------------------------------------------
    @property
    def entity_count(self) -> int:
        return self._entities  # kept by _apply: /healthz must not walk 100k nodes

    def sizes(self) -> tuple[int, int, int]:
        """(entities, nodes, edges) without waiting for a writer: while ingestion holds the
        lock, the sizes last counted (a health check must not stall behind a batch)."""
        if self.lock.acquire(blocking=False):
            try:
                self._sizes = (self._entities, self.g.number_of_nodes(), self.g.number_of_edges())
            finally:
                self.lock.release()
        return self._sizes

    def chunk_ids(self) -> np.ndarray:
        with self.lock:
            return np.fromiter(self.records, dtype=np.int64, count=len(self.records))

    # ---- adding ---------------------------------------------------------------------------
    def add(
        self, chunks: Sequence[GraphChunk], triples: dict[int, list[Triple]] | None = None
    ) -> None:
        """Extract and add chunks (already-present chunk ids are replaced)."""
        extracted = [
            (c, extract(c.sentences), _titles(c), (triples or {}).get(c.chunk_id, []))
            for c in chunks
        ]
        prepared = self._embed_new_names(extracted)  # the slow part, done before locking
        with self.lock:
            strong = {m.key for _, ms, ts, _ in extracted for m in [*ms, *ts] if not m.weak}
            extracted = [
                (c, [m for m in ms if not m.weak or self._known(m.key, strong)], ts, tr)
                for c, ms, ts, tr in extracted
            ]
            self.remove([c.chunk_id for c in chunks if c.chunk_id in self.records])
            surfaces: dict[str, tuple[str, str]] = {}
            for _, mentions, titles, tr in extracted:
                for m in [*mentions, *titles]:
                    surfaces.setdefault(m.key, (m.text, m.kind))
                for t in tr:
                    for name in (t.subject, t.object):
                        key = normalise(name)
                        if key:
                            surfaces.setdefault(key, (name, "name"))
            resolved = self._resolve(surfaces, prepared)
            for c, mentions, titles, tr in extracted:
                record = Contribution(
                    c.chunk_id,
                    c.document_id,
                    c.document_title,
                    list(c.heading_path),
                    [[resolved[m.key], m.text, m.kind, m.sentence] for m in [*mentions, *titles]],
                    [
                        [resolved[normalise(t.subject)], t.relation, resolved[normalise(t.object)]]
                        for t in tr
                        if normalise(t.subject) and normalise(t.object)
                    ],
                )
                self._apply(record, +1)
                self.records[c.chunk_id] = record
            self.version += 1

    def _known(self, key: str, strong: set[str]) -> bool:
        return key in strong or entity_node(self.aliases.get(key, key)) in self.g

    def _embed_new_names(self, extracted: Sequence[_Extracted]) -> dict[str, np.ndarray]:
        """Vectors of the names that look new, computed without the lock, so searches and
        health checks do not wait while a batch embeds its entity names. Reading the graph
        unlocked is only a hint: a name missed here is embedded under the lock as before."""
        if self.encode is None:
            return {}
        texts: set[str] = set()
        for _, mentions, titles, tr in extracted:
            for m in [*mentions, *titles]:
                if m.kind in _EMBEDDED_KINDS and not m.weak and self._looks_new(m.key):
                    texts.add(m.text)
            for t in tr:
                texts.update(n for n in (t.subject, t.object) if self._looks_new(normalise(n)))
        ordered = sorted(texts)
        if not ordered:
            return {}
        return dict(zip(ordered, np.asarray(self.encode(ordered), dtype=np.float32), strict=True))

    def _looks_new(self, key: str) -> bool:
        return bool(key) and entity_node(self.aliases.get(key, key)) not in self.g

    def _resolve(
        self, surfaces: dict[str, tuple[str, str]], prepared: dict[str, np.ndarray] | None = None
    ) -> dict[str, str]:
        """Key → canonical key for every key seen in this batch; new entities get vectors."""
        out: dict[str, str] = {}
        new: dict[str, None] = {}  # ordered set
        for key in surfaces:
            canonical = self.aliases.get(key, key)
            out[key] = canonical
            if entity_node(canonical) not in self.g:
                new[canonical] = None
        embeddable = [k for k in new if surfaces[k][1] in _EMBEDDED_KINDS]
        if self.encode is None or not embeddable:
            return out
        texts = [surfaces[k][0] for k in embeddable]
        known = dict(prepared or {})
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, np.asarray(self.encode(missing), np.float32), strict=True))
        vectors = np.stack([known[t] for t in texts])
        keys, matrix = self._entity_matrix()
        best_existing: list[tuple[str, float]] = [("", -1.0)] * len(embeddable)
        if len(keys):
            for start in range(0, len(vectors), 1024):  # bounded (rows × entities) blocks
                sims = vectors[start : start + 1024] @ matrix.T
                rows = np.argmax(sims, axis=1)
                for r, i in enumerate(rows.tolist()):
                    best_existing[start + r] = (keys[i], float(sims[r, i]))
        accepted: list[str] = []
        accepted_vecs = np.zeros_like(vectors)
        for n, (key, vec) in enumerate(zip(embeddable, vectors, strict=True)):
            best, best_sim = best_existing[n]
            if accepted:
                sims = accepted_vecs[: len(accepted)] @ vec
                j = int(np.argmax(sims))
                if float(sims[j]) > best_sim:
                    best, best_sim = accepted[j], float(sims[j])
            if best_sim >= self.merge_threshold and _share_word(key, best):
                self.aliases[key] = best
                for k, v in out.items():
                    if v == key:
                        out[k] = best
                continue
            accepted_vecs[len(accepted)] = vec
            accepted.append(key)
            self.vectors[key] = vec.astype(np.float16)
            if best_sim >= self.synonym_threshold:
                self._pending_synonyms.append((key, best, best_sim))
        return out

    def _entity_matrix(self) -> tuple[list[str], np.ndarray]:
        if self._matrix is None or self._matrix[0] != self.version:
            self._matrix = None  # let the old matrix go before the new one is built
            keys = [k for k in self.vectors if entity_node(k) in self.g]
            matrix = (
                np.stack([self.vectors[k] for k in keys]).astype(np.float32)
                if keys
                else np.zeros((0, 1), dtype=np.float32)
            )
            self._matrix = (self.version, keys, matrix)
        return self._matrix[1], self._matrix[2]

    def nearest_entities(
        self, vectors: np.ndarray, texts: Sequence[str]
    ) -> list[tuple[str, float]]:
        """For each name vector, the most similar entity (key, cosine). Compared first with the
        entities sharing a word with ``texts`` (an inverted index, cheap), with all entities
        only when none does."""
        keys, matrix = self._entity_matrix()
        if not keys:
            return [("", -1.0)] * len(vectors)
        words = self._word_rows()
        out = []
        for vec, text in zip(vectors, texts, strict=True):
            rows = sorted({r for w in normalise(text).split() for r in words.get(w, ())})
            sims = (matrix[rows] if rows else matrix) @ vec
            i = int(np.argmax(sims))
            out.append((keys[rows[i] if rows else i], float(sims[i])))
        return out

    def _word_rows(self) -> dict[str, list[int]]:
        """Word of an entity key → rows of the entity matrix (cached with it)."""
        if self._words is None or self._words[0] != self.version:
            keys, _ = self._entity_matrix()
            index: dict[str, list[int]] = {}
            for row, key in enumerate(keys):
                for w in set(key.split()):
                    if len(w) > 2:
                        index.setdefault(w, []).append(row)
            self._words = (self.version, index)
        return self._words[1]

    def adjacency(self) -> Adjacency:
        """The whole graph as a column-stochastic sparse matrix, cached until the next change
        (rebuilding costs one pass over the edges: ~1 s per million)."""
        with self.lock:
            if self._adjacency is None or self._adjacency.version != self.version:
                keys, matrix = self._entity_matrix()
                self._adjacency = None
                self._adjacency = Adjacency.build(self.g, keys, matrix, self.version)
            return self._adjacency

    def _apply(self, r: Contribution, sign: int) -> None:
        """Add (+1) or subtract (−1) one chunk's contribution."""
        g = self.g
        doc, chunk = doc_node(r.document_id), chunk_node(r.chunk_id)
        sec = section_node(r.document_id, r.section)
        if sign > 0:
            g.add_node(doc, kind="document", title=r.document_title)
            if sec != doc:
                g.add_node(sec, kind="section", title=r.section[-1])
                g.add_edge(doc, sec, kind="contains")
            g.add_node(chunk, kind="chunk")
            g.add_edge(sec, chunk, kind="contains")
        by_sentence: dict[int, set[str]] = {}
        touched: set[str] = set()
        for key, surface, kind, sentence in r.mentions:
            ent = entity_node(key)
            touched.add(ent)
            if sign > 0 and ent not in g:
                g.add_node(ent, kind="entity", name=surface, type=kind)
                self._entities += 1
                for other, b, sim in self._pending_synonyms:
                    if other == key and entity_node(b) in g:
                        _bump(g, ent, entity_node(b), "synonym", sim, set_value=True)
            if kind == "title":
                owner = doc if sentence == -1 else sec
                _bump(g, owner, ent, "titles", sign)
                _bump(g, chunk, ent, "about", sign)  # the chunk is about its title's entity
            else:
                _bump(g, chunk, ent, "mentions", sign)
                by_sentence.setdefault(int(sentence), set()).add(ent)
        for ents in by_sentence.values():
            for a, b in combinations(sorted(ents), 2):
                _bump(g, a, b, "cooc", sign)
        for s, rel, o in r.triples:
            a, b = entity_node(s), entity_node(o)
            for n, name in ((a, s), (b, o)):
                if sign > 0 and n not in g:
                    g.add_node(n, kind="entity", name=name, type="name")
                    self._entities += 1
                touched.add(n)
                _bump(g, chunk, n, "mentions", sign)
            _bump_rel(g, a, b, f"{s}|{rel}|{o}", sign)
        if sign < 0:
            if chunk in g:
                g.remove_node(chunk)
            for node in (sec, doc):
                if node in g and not any(
                    g.nodes[n].get("kind") in {"chunk", "section"} for n in g[node]
                ):
                    touched.update(n for n in g[node] if n.startswith("e:"))
                    g.remove_node(node)
            for ent in touched:
                if ent in g and not any(not n.startswith("e:") for n in g[ent]):
                    g.remove_node(ent)
                    self._entities -= 1
                    key = ent[2:]
                    self.vectors.pop(key, None)
                    for alias in [a for a, c in self.aliases.items() if c == key]:
                        del self.aliases[alias]
        elif sign > 0:
            pending = self._pending_synonyms
            self._pending_synonyms = [p for p in pending if entity_node(p[0]) not in g]

    # ---- inspection -----------------------------------------------------------------------
    def entity(self, key: str) -> dict[str, Any] | None:
        """An entity by key (or alias, or any surface form of it), with its mention count."""
        with self.lock:
            key = normalise(key) if entity_node(key) not in self.g else key
            key = self.aliases.get(key, key)
            node = entity_node(key)
            if node not in self.g:
                return None
            data = self.g.nodes[node]
            support = sum(1 for n in self.g[node] if not n.startswith("e:"))
            return {"key": key, "name": data["name"], "type": data["type"], "chunks": support}

    def find_entities(self, query: str, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        """Entities whose key contains the normalised query (all when it is empty), the exact
        match first, then by how many chunks mention them; returns (total, first ``limit``)."""
        q = normalise(query) if query.strip() else ""
        with self.lock:
            hits = [n[2:] for n in self.g if n.startswith("e:") and q in n[2:]]
            rows = [e for k in hits if (e := self.entity(k)) is not None]
        rows.sort(key=lambda e: (e["key"] != q, -e["chunks"], e["key"]))
        return len(rows), rows[:limit]

    def neighbourhood(self, key: str, limit: int = 50) -> dict[str, Any] | None:
        """An entity's mentions (chunks, sections, documents) and its strongest neighbours."""
        with self.lock:
            info = self.entity(key)
            if info is None:
                return None
            node = entity_node(info["key"])
            mentions: list[dict[str, Any]] = []
            links: list[tuple[float, str, dict[str, Any]]] = []
            for nb, data in self.g[node].items():
                if nb.startswith("e:"):
                    weight = data.get("cooc", 0) + sum((data.get("rel") or {}).values())
                    links.append((weight + data.get("synonym", 0), nb, data))
                elif nb.startswith("c:"):
                    record = self.records[int(nb[2:])]
                    mentions.append(
                        {
                            "chunk_id": record.chunk_id,
                            "document_id": record.document_id,
                            "title": record.document_title,
                            "mentions": int(data.get("mentions", 0)),
                        }
                    )
            links.sort(key=lambda x: (-x[0], x[1]))
            mentions.sort(key=lambda m: (-m["mentions"], m["chunk_id"]))
            return {
                "entity": info,
                "aliases": sorted(a for a, c in self.aliases.items() if c == info["key"]),
                "mentioned_in": mentions[:limit],
                "neighbours": [
                    {
                        "entity": self.entity(nb[2:]),
                        "cooccurrences": int(data.get("cooc", 0)),
                        "relations": sorted(data.get("rel") or {}),
                        "synonym": data.get("synonym"),
                    }
                    for _, nb, data in links[:limit]
                ],
            }

    # ---- removing -------------------------------------------------------------------------
    def remove(self, chunk_ids: Iterable[int]) -> int:
        """Remove the chunks' contributions in one pass; returns how many were present."""
        n = 0
        with self.lock:
            for cid in chunk_ids:
                record = self.records.pop(int(cid), None)
                if record is not None:
                    self._apply(record, -1)
                    n += 1
            if n:
                self.version += 1
        return n

    def remove_documents(self, document_ids: Iterable[str]) -> int:
        wanted = set(document_ids)
        with self.lock:
            ids = [cid for cid, r in self.records.items() if r.document_id in wanted]
            return self.remove(ids)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        with self.lock:
            payload = {
                "format": FORMAT_VERSION,
                "records": [asdict(r) for r in self.records.values()],
                "aliases": self.aliases,
                "synonyms": [
                    [u[2:], v[2:], d["synonym"]]
                    for u, v, d in self.g.edges(data=True)
                    if "synonym" in d
                ],
            }
            keys = [k for k in self.vectors if entity_node(k) in self.g]
            dim = next(iter(self.vectors.values())).shape[0] if self.vectors else 0
            matrix = (
                np.stack([self.vectors[k] for k in keys])
                if keys
                else np.zeros((0, dim), np.float16)
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    payload=np.array(json.dumps(payload)),
                    keys=np.array(keys, dtype=str),
                    vectors=matrix,
                )
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, encode: Encoder | None = None, **options: float) -> KnowledgeGraph:
        """Replay a file written by :meth:`save`; ``ValueError`` when it is unusable."""
        try:
            with np.load(path, allow_pickle=False) as data:
                payload = json.loads(str(data["payload"]))
                keys = data["keys"].tolist()
                matrix = data["vectors"].astype(np.float16)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"cannot read graph {path}: {exc}") from exc
        if payload.get("format") != FORMAT_VERSION:
            raise ValueError(f"graph {path}: format {payload.get('format')}, not {FORMAT_VERSION}")
        kg = cls(encode, **options)
        kg.vectors = dict(zip(keys, matrix, strict=True))
        kg.aliases = dict(payload["aliases"])
        for raw in payload["records"]:
            record = Contribution(**raw)
            kg._apply(record, +1)
            kg.records[record.chunk_id] = record
        for a, b, sim in payload["synonyms"]:
            if entity_node(a) in kg.g and entity_node(b) in kg.g:
                _bump(kg.g, entity_node(a), entity_node(b), "synonym", sim, set_value=True)
        kg.version += 1
        return kg


def _titles(c: GraphChunk) -> list[Mention]:
    out = []
    for where, title in ((-1, c.document_title), *((-2, h) for h in c.heading_path[-1:])):
        out += title_mentions(title, where)
    return out


def _share_word(a: str, b: str) -> bool:
    return bool(set(a.split()) & set(b.split()))


def _bump(g: nx.Graph, u: str, v: str, attr: str, amount: float, set_value: bool = False) -> None:
    if amount > 0:
        if not g.has_edge(u, v):
            g.add_edge(u, v)
        data = g[u][v]
        data[attr] = amount if set_value else data.get(attr, 0) + amount
        return
    if not g.has_edge(u, v):
        return
    data = g[u][v]
    data[attr] = data.get(attr, 0) + amount
    if data[attr] <= 0:
        del data[attr]
    if not any(
        k in data for k in ("mentions", "about", "titles", "cooc", "rel", "synonym", "kind")
    ):
        g.remove_edge(u, v)


def _bump_rel(g: nx.Graph, u: str, v: str, name: str, amount: int) -> None:
    if amount > 0 and not g.has_edge(u, v):
        g.add_edge(u, v)
    if not g.has_edge(u, v):
        return
    rel: Counter[str] = g[u][v].setdefault("rel", Counter())
    rel[name] += amount
    if rel[name] <= 0:
        del rel[name]
    if not rel:
        del g[u][v]["rel"]
        _bump(g, u, v, "cooc", 0)


__all__ = ["Contribution", "GraphChunk", "KnowledgeGraph", "Triple"]
