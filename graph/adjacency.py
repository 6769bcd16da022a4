"""A snapshot of the knowledge graph as a sparse random-walk matrix (for graph search).

Rebuilt from the networkx graph after each change, on the first search that needs it: one
pass over the edges (about a second per million). Walks then cost numpy/scipy operations on the
nodes they reach instead of Python loops over dict-of-dict adjacency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse

EDGE_WEIGHTS = {
    "mentions": 1.0,
    "about": 3.0,
    "titles": 1.0,
    "cooc": 0.5,
    "rel": 1.0,
    "synonym": 1.0,
}
CONTAINS_WEIGHT = 0.5
KIND_CODES = {"entity": 0, "chunk": 1, "section": 2, "document": 3}


def edge_weight(data: dict[str, Any]) -> float:
    """Random-walk weight of an edge: the sum of what it carries."""
    w = CONTAINS_WEIGHT if data.get("kind") == "contains" else 0.0
    for attr, factor in EDGE_WEIGHTS.items():
        value = data.get(attr)
        if value:
            w += factor * (sum(value.values()) if isinstance(value, dict) else float(value))
    return w or 1e-6


@dataclass
class Adjacency:
    """A snapshot of the graph for random walks: node order, kinds, the transition matrix
    (column-stochastic CSC, ``T[v, u]`` = P(u → v)) and each entity's name vector row."""

    version: int
    nodes: list[str]
    index: dict[str, int]
    kinds: np.ndarray  # KIND_CODES per node
    transition: sparse.csc_matrix  # column u: where a walker at u goes next
    vector_rows: np.ndarray  # node → row of ``vectors`` (-1: none)
    vectors: np.ndarray  # the graph's entity-name matrix (shared, float32)

    @classmethod
    def build(
        cls, g: nx.Graph, entity_keys: list[str], entity_matrix: np.ndarray, version: int
    ) -> Adjacency:
        """``entity_keys`` / ``entity_matrix``: the graph's entity-name matrix, shared (not
        copied): node → row of it."""
        nodes = list(g.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        kinds = np.array([KIND_CODES[g.nodes[n]["kind"]] for n in nodes], dtype=np.int8)
        rows, cols, vals = [], [], []
        for u, v, data in g.edges(data=True):
            w = edge_weight(data)
            iu, iv = index[u], index[v]
            rows += [iv, iu]
            cols += [iu, iv]
            vals += [w, w]
        n = len(nodes)
        m = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float64)
        out = np.asarray(m.sum(axis=0)).ravel()
        out[out == 0] = 1.0
        transition = sparse.csc_matrix(m @ sparse.diags(1.0 / out))
        vector_rows = np.full(n, -1, dtype=np.int64)
        for row, key in enumerate(entity_keys):
            i = index.get(f"e:{key}")
            if i is not None:
                vector_rows[i] = row
        return cls(version, nodes, index, kinds, transition, vector_rows, entity_matrix)
