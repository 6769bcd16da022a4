"""The ask options, declared once: ``/ask`` takes :class:`AskParams`, the chat-compatible
endpoints :class:`AskKnobs` (no ``explain``: their replies have no place for it), and
``sieve ask`` makes its flags from :class:`AskParams`'s fields (app/cli/ask.py). Every option
left out (None) takes the server's configured default; ``Services.options`` refuses values
over the configured maxima. Light on purpose (no index, no models): every CLI command imports it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.names import DEFAULT_COLLECTION_NAME, NAME_PATTERN
from app.retrieval_modes import Retrieval

PruneThreshold = Annotated[
    float | None,
    Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Sentence keep threshold on the sentence blend's probability (0.015 by "
        "default; on the keep probability, 0.01, when SIEVE_PRUNER_BLEND=false). 0 keeps every "
        "sentence of the top_k passages.",
    ),
]


class AskKnobs(BaseModel):
    """How a question is answered."""

    top_k: int | None = Field(
        None, ge=1, le=100, description="Passages in the context (default SIEVE_TOP_K)."
    )
    candidates: int | None = Field(
        None, ge=1, le=1000, description="Chunks retrieved (default SIEVE_CANDIDATES)."
    )
    prune_threshold: PruneThreshold = None
    max_context_tokens: int | None = Field(
        None,
        ge=16,
        le=200_000,
        description="Token budget of the context sent to the LLM (default "
        "SIEVE_MAX_CONTEXT_TOKENS).",
    )
    llm: str | None = Field(
        None, max_length=50, description="Answer backend: extractive, openai or llamacpp."
    )
    retrieval: Retrieval | None = Field(
        None, description="Retrievers: vector, lexical (BM25), graph, or hybrid (all, fused)."
    )
    hops: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Extra hops after the first pass (bridge entities of the kept sentences → "
        "retrieve again → prune what names them); 0: one pass. Default SIEVE_HOPS, at most "
        "SIEVE_MAX_HOPS.",
    )

    def overrides(self) -> dict[str, Any]:
        """The options as ``Services.options`` takes them (None: the configured default)."""
        return {name: getattr(self, name) for name in AskKnobs.model_fields}


class AskParams(AskKnobs):
    """:class:`AskKnobs`, the collection and ``explain``: all that ``/ask`` and ``sieve ask``
    take besides the question."""

    explain: bool = Field(
        False, description="Return the graph seeds, subgraph and fused candidate list."
    )
    collection: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description=f"Collection to search; default: the key's only collection "
        f"({DEFAULT_COLLECTION_NAME!r} without auth).",
    )

    def overrides(self) -> dict[str, Any]:
        return {**super().overrides(), "explain": self.explain}
