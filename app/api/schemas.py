"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.options import AskParams
from app.collections import NAME_PATTERN
from app.job_store import Job
from app.parsing.common import UNSAFE_INLINE
from app.pipeline import Answer, Citation
from index import ChunkRecord, DocumentRecord

MAX_QUESTION_CHARS = 4000
MAX_TEXT_CHARS = 20_000_000


MAX_EXTERNAL_ID_CHARS = 500
MAX_METADATA_FIELDS = 50


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., min_length=1, max_length=500)
    text: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS)
    format: str = Field("txt", pattern="^(txt|md)$", description="How to read `text`.")
    metadata: dict[str, str] = Field(default_factory=dict)
    collection: str | None = Field(None, pattern=NAME_PATTERN, description="Target collection.")
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_EXTERNAL_ID_CHARS,
        description="Your id for the document: uploading the same id again replaces it.",
    )

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("title", "external_id")
    @classmethod
    def _one_safe_line(cls, value: str | None) -> str | None:
        if value is not None:
            _refuse_control(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _safe_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_FIELDS:
            raise ValueError(f"at most {MAX_METADATA_FIELDS} metadata fields, got {len(value)}")
        for key, item in value.items():
            if not key or len(key) > 100 or len(item) > 2000:
                raise ValueError("metadata keys are 1-100 characters, values at most 2000")
            _refuse_control(key)
            _refuse_control(item)
        return value


def _refuse_control(value: str) -> None:
    """Labels shown in terminals and pages: no control or bidi-override characters (the same
    rule as text files, which refuse binary control characters)."""
    found = UNSAFE_INLINE.search(value)
    if found is not None:
        raise ValueError(
            "must not contain control, bidi-override or lone surrogate characters "
            f"(found U+{ord(found.group()):04X})"
        )


class DocumentOut(BaseModel):
    id: str
    title: str
    source: str
    format: str
    content_hash: str
    created_at: str
    chunk_count: int
    char_count: int
    metadata: dict[str, str]
    collection: str
    external_id: str | None = Field(
        None, description="The uploader's id: uploading it again replaces this document."
    )

    @classmethod
    def of(cls, r: DocumentRecord) -> DocumentOut:
        return cls(**{f: getattr(r, f) for f in cls.model_fields})


class UploadedDocument(DocumentOut):
    duplicate: bool = Field(description="Same content was already stored: nothing re-indexed.")
    replaced: str | None = Field(
        None, description="Id of the document with the same external id that this one replaced."
    )


class UploadResponse(BaseModel):
    documents: list[UploadedDocument]
    job: str | None = Field(None, description="The ingestion job that stored them.")


class JobOut(BaseModel):
    id: str
    collection: str
    status: Literal["queued", "running", "done", "failed"]
    total: int = Field(description="Documents in the job.")
    done: int = Field(description="Documents parsed and embedded so far.")
    error: str | None = None
    created_at: str
    updated_at: str
    documents: list[UploadedDocument] | None = Field(None, description="When done.")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            collection=job.collection,
            status=job.status,
            total=job.total,
            done=job.done,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
            documents=uploaded(job.result) if job.result is not None else None,
        )


def uploaded(result: list[dict[str, Any]]) -> list[UploadedDocument]:
    """A job's stored result (per document: {document, duplicate, replaced}) as the API's."""
    return [
        UploadedDocument(
            **DocumentOut.model_validate(r["document"]).model_dump(),
            duplicate=r["duplicate"],
            replaced=r["replaced"],
        )
        for r in result
    ]


class JobList(BaseModel):
    jobs: list[JobOut]


class DocumentList(BaseModel):
    total: int
    documents: list[DocumentOut]


class SentenceOut(BaseModel):
    index: int
    start: int = Field(description="Char offset into the document text.")
    end: int
    text: str
    score: float | None = None


class ChunkOut(BaseModel):
    id: int
    ordinal: int
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str
    sentences: list[SentenceOut]

    @classmethod
    def of(cls, c: ChunkRecord) -> ChunkOut:
        return cls(
            id=c.id,
            ordinal=c.ordinal,
            heading_path=list(c.heading_path),
            page=c.page,
            start=c.start,
            end=c.end,
            text=c.text,
            sentences=[
                SentenceOut(index=s.index, start=s.start, end=s.end, text=s.text)
                for s in c.sentences
            ],
        )


class DocumentDetail(DocumentOut):
    text: str
    chunk_offset: int = Field(0, description="Ordinal of the first chunk in `chunks`.")
    chunks: list[ChunkOut] = Field(
        description="One page of chunks (chunk_limit, chunk_offset); chunk_count is the total."
    )


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(..., min_length=1, max_length=10_000, description="Document ids.")


class DeletedDocuments(BaseModel):
    deleted: list[str]


class AskRequest(AskParams):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS)
    stream: bool = Field(
        False,
        description="Answer as server-sent events: retrieval, context, token…, done "
        "(error instead of done if the LLM fails midway).",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be blank")
        return value


class RetrieverHit(BaseModel):
    rank: int = Field(description="1-based rank in that retriever's list.")
    score: float = Field(description="The retriever's own score (cosine, BM25, PageRank).")


class SourceSentence(BaseModel):
    index: int
    text: str
    score: float = Field(description="The pruner's keep score of the sentence.")
    kept: bool = Field(description="Sent to the LLM (false: pruned, or over the token budget).")
    dropped: Literal["pruned", "budget"] | None = Field(
        None,
        description='Why it was not sent: "pruned" (the pruner dropped it) or "budget" (the '
        "pruner kept it, max_context_tokens had no room); null when sent.",
    )
    answer_score: float | None = Field(
        None,
        description="How well a sent sentence answers the question (keep score mixed with the "
        "question-sentence cosine; 0 for headings); the extractive answer uses the best ones.",
    )


class CitationOut(BaseModel):
    n: int
    document_id: str = Field(description='"" for the knowledge-graph facts passage.')
    title: str
    chunk_id: int
    heading_path: list[str]
    page: int | None
    score: float = Field(description="Reranking score of the passage, in [0, 1].")
    text: str = Field(description="The kept sentences of the passage.")
    sentences: list[SentenceOut] = Field(description="Kept sentences with document offsets.")
    kept_sentences: int
    pruned_sentences: int = Field(
        description="Sentences not sent: pruned, plus over_budget_sentences."
    )
    over_budget_sentences: int = Field(
        0, description="Sentences the pruner kept that did not fit max_context_tokens."
    )
    retrievers: dict[str, RetrieverHit] = Field(description="The retrievers that found it.")
    source: list[SourceSentence] = Field(
        description="Every sentence of the passage, kept or pruned, in order."
    )
    hop: int = Field(0, description="0: found by the first pass; n: by the n-th extra hop.")
    bridge: str | None = Field(None, description="The entity that led a later hop to it.")
    led_by: int | None = Field(
        None, description="The citation (n) whose kept sentences named that entity."
    )

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        kept = {s.index for s in c.kept}
        answers = dict(zip((s.index for s in c.kept), c.answer_scores, strict=False))
        return cls(
            n=c.n,
            document_id=c.chunk.document_id,
            title=c.title,
            chunk_id=c.chunk.id,
            heading_path=list(c.chunk.heading_path),
            page=c.chunk.page,
            score=c.score,
            text=" ".join(s.text for s in c.kept),
            sentences=[
                SentenceOut(index=s.index, start=s.start, end=s.end, text=s.text, score=score)
                for s, score in zip(c.kept, c.kept_scores, strict=True)
            ],
            kept_sentences=len(c.kept),
            pruned_sentences=c.pruned_count,
            over_budget_sentences=len(c.over_budget),
            retrievers={
                name: RetrieverHit(rank=rank, score=float(score))
                for name, (rank, score) in c.found_by.items()
            },
            source=[
                SourceSentence(
                    index=s.index,
                    text=s.text,
                    score=round(c.sentence_scores[s.index], 6) if c.sentence_scores else 0.0,
                    kept=s.index in kept,
                    dropped=_dropped(s.index, kept, c.over_budget),
                    answer_score=_rounded(answers.get(s.index)),
                )
                for s in c.chunk.sentences
            ],
            hop=c.hop,
            bridge=c.bridge,
            led_by=c.led_by,
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _dropped(
    index: int, sent: set[int], over_budget: frozenset[int]
) -> Literal["pruned", "budget"] | None:
    if index in sent:
        return None
    return "budget" if index in over_budget else "pruned"


class AskStats(BaseModel):
    candidates: int
    tokens_candidates: int = Field(description="Tokens of all retrieved passages.")
    tokens_before: int = Field(description="Tokens of the top_k reranked passages, unpruned.")
    tokens_after: int = Field(description="Tokens of the context sent to the LLM (headers too).")
    compression: float = Field(
        description="1 - tokens_after / tokens_before: what pruning and the budget saved."
    )
    tokens_pruned: int = Field(
        0,
        description="Of tokens_before: tokens the pruner dropped (headers of passages it "
        "emptied too).",
    )
    tokens_over_budget: int = Field(
        0, description="Of tokens_before: tokens the pruner kept that max_context_tokens left out."
    )
    sentences_pruned: int = Field(
        0, description="Sentences of the top_k reranked passages that the pruner dropped."
    )
    sentences_over_budget: int = Field(
        0,
        description="Sentences of the top_k reranked passages the pruner kept that did not "
        "fit max_context_tokens.",
    )
    timings_ms: dict[str, float]
    retrieval: str = Field(description="The retrieval mode used.")
    retrievers: dict[str, int] = Field(
        description="How many of the candidates each retriever found (a chunk found by two "
        "retrievers counts for both)."
    )
    hops: int = Field(0, description="Extra hops that added a passage (the `hop` of citations).")
    bridges: list[str] = Field(
        default_factory=list, description="The bridge entities those hops followed."
    )

    @classmethod
    def of(cls, a: Answer) -> AskStats:
        return cls(
            candidates=a.candidates,
            tokens_candidates=a.tokens_candidates,
            tokens_before=a.tokens_before,
            tokens_after=a.tokens_after,
            compression=round(a.compression, 4),
            tokens_pruned=a.tokens_pruned,
            tokens_over_budget=a.tokens_over_budget,
            sentences_pruned=a.sentences_pruned,
            sentences_over_budget=a.sentences_over_budget,
            timings_ms=dict(a.timings_ms),
            retrieval=a.retrieval,
            retrievers=a.retrievers,
            hops=a.hops,
            bridges=list(a.bridges),
        )


class ContextEvent(BaseModel):
    """The ``context`` event of a streamed /ask: what the LLM is about to see."""

    abstained: bool
    citations: list[CitationOut]
    context: str
    stats: AskStats

    @classmethod
    def of(cls, a: Answer) -> ContextEvent:
        return cls(
            abstained=not a.citations,
            citations=[CitationOut.of(c) for c in a.citations],
            context=a.context,
            stats=AskStats.of(a),
        )


class AskResponse(BaseModel):
    answer: str
    abstained: bool
    llm: str
    citations: list[CitationOut]
    context: str
    stats: AskStats
    explain: dict[str, Any] | None = Field(
        None, description="With explain=true: {seeds, subgraph, graph_facts, candidates}."
    )
    degraded: str | None = Field(
        None,
        description="Why the answer is extractive although another llm was asked for (it "
        "failed, or its circuit is open); null for a normal answer.",
    )

    @classmethod
    def of(cls, a: Answer) -> AskResponse:
        return cls(
            answer=a.answer,
            abstained=a.abstained,
            llm=a.llm,
            citations=[CitationOut.of(c) for c in a.citations],
            context=a.context,
            stats=AskStats.of(a),
            explain=a.explain,
            degraded=a.degraded,
        )


class EntityOut(BaseModel):
    key: str = Field(description="Normalised entity key (use it as `entity=`).")
    name: str
    type: str = Field(description="name, acronym, quoted, date, quantity or title.")
    chunks: int = Field(description="Chunks, sections and documents that mention it.")


class EntityList(BaseModel):
    total: int
    entities: list[EntityOut]


class LinkOut(BaseModel):
    entity: EntityOut
    cooccurrences: int = Field(description="Sentences mentioning both.")
    relations: list[str] = Field(description="Typed relations (subject|relation|object).")
    synonym: float | None = Field(None, description="Name similarity, when marked a synonym.")


class MentionOut(BaseModel):
    chunk_id: int
    document_id: str
    title: str
    mentions: int


class Neighbourhood(BaseModel):
    entity: EntityOut
    aliases: list[str]
    mentioned_in: list[MentionOut]
    neighbours: list[LinkOut]


class GraphHealth(BaseModel):
    entities: int
    nodes: int
    edges: int
    triples: str = Field(description="LLM triple extraction: off, or llm.")
    triples_pending: int = Field(description="Chunks waiting for LLM triple extraction.")
    triples_stats: dict[str, int] = Field(description="done, cached, failed, skipped.")


class BreakerHealth(BaseModel):
    state: Literal["closed", "open", "half_open"] = Field(
        description="closed: calls go through; open: they fail fast; half_open: one trial."
    )
    consecutive_failures: int
    opened_at: str | None = Field(description="When the circuit last opened (UTC), if open.")
    retry_in_s: float | None = Field(description="Seconds until the trial call, while open.")


class ModelsHealth(BaseModel):
    device: str = Field(description="Where the models run: cpu, cuda, cuda:1 …")
    precision: str = Field(description="fp32, bf16 or int8 (SIEVE_PRECISION; auto picks).")
    reason: str = Field(description="Why that precision.")
    embedder_precision: str
    pruner_precision: str | None = Field(None, description="None for the similarity pruner.")
    sentence_blend_threshold: float | None = Field(
        None,
        description="Default keep threshold of the sentence blend (pruner/blend.py); None when "
        "sentences are kept by the pruner's keep probability alone.",
    )
    pruner_batches: dict[str, int] = Field(
        default_factory=dict,
        description="Merged forward calls, requests served, most requests merged in one call, "
        "cache hits.",
    )


class Health(BaseModel):
    """Counts and the graph block only for the admin key (or with auth off): an anonymous
    probe learns that the service is up, not what it holds."""

    status: str
    auth: bool = Field(description="API keys required.")
    collections: int | None = None
    documents: int | None = None
    chunks: int | None = None
    index_kind: str | None = None
    llm: str
    llm_backends: list[str] = Field(description="Backends a request may choose with `llm`.")
    llm_breakers: dict[str, BreakerHealth] = Field(
        default_factory=dict, description="Circuit breaker of each model backend."
    )
    graph: GraphHealth | None = None
    models: ModelsHealth | None = None
