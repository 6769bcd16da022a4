"""The retrieval modes, declared once: settings, the request models, the CLI and the pipeline
take them from here."""

from __future__ import annotations

from typing import Literal, get_args

Retrieval = Literal["vector", "lexical", "graph", "hybrid"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(Retrieval)
RETRIEVERS: tuple[str, ...] = ("vector", "lexical", "graph")  # what "hybrid" fuses


class UnknownRetrievalError(ValueError):
    pass


def retrievers_of(mode: str) -> tuple[str, ...]:
    """The retrievers a mode runs; an unknown mode is refused."""
    if mode not in RETRIEVAL_MODES:
        raise UnknownRetrievalError(
            f"unknown retrieval mode {mode!r}; use one of {list(RETRIEVAL_MODES)}"
        )
    return RETRIEVERS if mode == "hybrid" else (mode,)
