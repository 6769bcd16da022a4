"""The retrieval modes, declared once: settings, the request models, the CLI and the pipeline
take them from here."""

from __future__ import annotations

from typing import Literal, get_args

Retrieval = Literal["vector", "lexical", "graph", "hybrid"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(Retrieval)
RETRIEVERS: tuple[str, ...] = ("vector", "lexical", "graph")  # what "hybrid" fuses
