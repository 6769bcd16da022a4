"""Builds the heavy objects once (models, index, pipeline) and closes them at shutdown."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.chain import HopLimits
from app.collection import Collection
from app.collections import Collections
from app.jobs import JobQueue
from app.llm import LLM, ExtractiveLLM, LlamaCppLLM, OpenAILLM
from app.llm.resilient import with_resilience
from app.pipeline import Answer, Pipeline
from app.precision import Precision, resolve_precision
from app.settings import Settings
from app.sieve import Sieve
from app.triples import TripleWorker
from app.uploads import UploadChecker, UploadLimits
from graph import GraphRetriever, KnowledgeGraph
from graph.triples import TripleCache
from index import DEFAULT_COLLECTION, CachedEncoder, Embedder
from pruner import BlendedPruner, ContextPruner, Pruner, SentenceBlend, SimilarityPruner
from pruner.inference import CHECKPOINT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedParts:
    """What another process serves (``sieve serve --ray``: Ray Serve deployments), used instead
    of building it here. The embedder is still loaded here for its tokenizer and uploads."""

    encode: Callable[[Sequence[str]], np.ndarray] | None = None  # questions, sentences, names
    pruner: Pruner | None = None  # the sentence model (the blend, when on, is computed here)
    # the facade whose work runs elsewhere (collections spread over the cluster)
    sieve: Callable[[Settings, Collections, Pipeline], Sieve] | None = None
    open_default: bool = True  # open the default collection at start (not where none is held)
    jobs: bool = True  # run upload jobs here (not on replicas that only hold collections)


def build_pruner(
    settings: Settings,
    encode: CachedEncoder,
    chosen: Precision | None = None,
    model: Pruner | None = None,
) -> Pruner:
    """The configured pruner, in ``chosen`` precision (resolved from the settings if not given);
    ``model``: the sentence model served elsewhere instead of loading the checkpoint here."""
    if settings.pruner == "similarity":
        return SimilarityPruner(encode)
    path = (settings.pruner_path or CHECKPOINT).resolve()
    blend = SentenceBlend.beside(path) if settings.pruner_blend else None
    model = model or sentence_model(settings, chosen)
    return BlendedPruner(model, encode, blend) if blend else model


def sentence_model(settings: Settings, chosen: Precision | None = None) -> ContextPruner:
    """The pruner's sentence model as the settings configure it (loaded once per process)."""
    chosen = chosen or resolve_precision(settings.precision, settings.device)
    return context_pruner(
        (settings.pruner_path or CHECKPOINT).resolve(),
        chosen.device,
        settings.pruner_batch_size,
        chosen.precision,
        settings.pruner_cache_size,
        settings.pruner_max_batch_windows,
        settings.pruner_max_wait_ms / 1000,
    )


@lru_cache(maxsize=2)
def context_pruner(
    path: Path,
    device: str,
    batch_size: int,
    precision: str = "fp32",
    cache_size: int = 4096,
    max_batch_windows: int = 64,
    max_wait_s: float = 0.0,
) -> ContextPruner:
    """One loaded model per checkpoint and setting in a process: it is read-only and thread-safe,
    so apps built again in the same process (tests, the CLI) share it instead of loading it anew.
    A checkpoint rewritten in place is picked up after ``context_pruner.cache_clear()``."""
    return ContextPruner(
        path,
        device=device,
        batch_size=batch_size,
        precision=precision,
        cache_size=cache_size,
        max_batch_windows=max_batch_windows,
        max_wait_s=max_wait_s,
    ).load()


def build_llms(settings: Settings) -> dict[str, LLM]:
    """The answer backends a request may pick: ``SIEVE_LLM_BACKENDS``, or the configured one
    plus extractive. A backend the operator did not enable is never reachable from a request
    (it could call a server or load a model nobody asked for)."""
    factories: dict[str, Callable[[], LLM]] = {
        "extractive": lambda: ExtractiveLLM(settings.extractive_sentences),
        "openai": lambda: OpenAILLM(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key,
            settings.llm_timeout_s,
            settings.llm_max_tokens,
            settings.llm_temperature,
        ),
        # cheap: the GGUF is assembled and loaded on the first request for this backend
        "llamacpp": lambda: LlamaCppLLM(
            settings.llamacpp_model_path,
            settings.data_dir / "models",
            n_ctx=settings.llamacpp_n_ctx,
            n_threads=settings.llamacpp_threads,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        ),
    }
    llms = {name: factories[name]() for name in settings.llm_backend_list}
    return {name: _resilient(llm, settings) for name, llm in llms.items()}


def _resilient(llm: LLM, settings: Settings) -> LLM:
    """A model backend behind retries, a deadline and a circuit breaker; extractive cannot
    fail, so it stays as it is (it is also the fallback when the others fail)."""
    if isinstance(llm, ExtractiveLLM):
        return llm
    # a local model's failure is not transient (and a retry would queue behind the same lock)
    retries = 0 if isinstance(llm, LlamaCppLLM) else settings.llm_retries
    return with_resilience(
        llm,
        retries=retries,
        backoff_s=settings.llm_backoff_s,
        timeout_s=settings.llm_timeout_s,
        failures=settings.llm_breaker_failures,
        cooldown_s=settings.llm_breaker_cooldown_s,
    )


@dataclass
class Services:
    settings: Settings
    embedder: Embedder
    collections: Collections
    pruner: Pruner
    pipeline: Pipeline
    jobs: JobQueue
    uploads: UploadChecker  # reads and checks uploaded files, bounded (app/uploads.py)
    precision: Precision  # what SIEVE_PRECISION resolved to on this machine, once
    sieve: Sieve  # the facade the routes and the CLI call (ask, ingest, delete, graph, …)
    triples: TripleWorker | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        observers: Sequence[Callable[[Answer], None]] = (),
        shared: SharedParts | None = None,
    ) -> Services:
        """``embedder`` may be passed in already loaded (tests share one per session);
        ``observers`` are called with every finished answer (metrics); ``shared``: models
        served by another process, used instead of loading them here."""
        shared = shared or SharedParts()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: we load local files only
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        chosen = resolve_precision(settings.precision, settings.device)
        embedder = (
            embedder
            or Embedder(
                settings.embedder_path,
                chosen.device,
                settings.embed_batch_size,
                precision=chosen.precision,
            )
        ).load()
        triples = None
        if settings.graph_triples == "llm" and settings.graph:
            triples = TripleWorker(
                TripleCache(settings.triples_cache_path),
                settings.llm_base_url,
                settings.llm_model,
                settings.llm_api_key,
                settings.llm_timeout_s,
                settings.llm_max_tokens,
            ).start()
        try:
            return cls._assemble(settings, embedder, chosen, triples, observers, shared)
        except BaseException:  # its thread, client and cache must not outlive a failed start
            if triples is not None:
                triples.close()
            raise

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        embedder: Embedder,
        chosen: Precision,
        triples: TripleWorker | None,
        observers: Sequence[Callable[[Answer], None]],
        shared: SharedParts,
    ) -> Services:
        # every chunk a collection adds to its graph goes to the triple worker (when enabled)
        collections = Collections(settings, embedder, triples.submit if triples else None)
        encode = CachedEncoder(shared.encode or embedder.encode)
        pruner = build_pruner(settings, encode, chosen, shared.pruner)
        llms = build_llms(settings)

        def graph(kg: KnowledgeGraph) -> GraphRetriever:
            return GraphRetriever(
                kg,
                max_depth=settings.graph_max_depth,
                max_nodes=settings.graph_max_nodes,
                prune_threshold=settings.graph_prune_threshold,
                facts=settings.graph_facts,
                encode=encode,
            )

        pipeline = Pipeline(
            collections,
            embedder,
            pruner,
            llms,
            graph=graph,
            encode=encode,
            rerank=settings.rerank,
            blend_weight=settings.rerank_blend_weight,
            mix_weight=settings.rerank_mix_weight,
            max_pending=settings.max_pending_asks,
            threads=settings.ask_threads,
            hop_limits=HopLimits(
                bridges=settings.hop_bridges,
                retrieved=settings.hop_new_candidates,
                rescored=settings.hop_candidates,
            ),
            hop_llm=settings.hop_llm,
            hop_llm_timeout_s=settings.hop_llm_timeout_s,
            # the extractive backend is always enabled (llm_backend_list)
            fallback=llms["extractive"] if settings.llm_fallback else None,
            observers=observers,
        )
        if shared.open_default:
            collections.get(DEFAULT_COLLECTION)  # opened now: the others on first use
        logger.info(
            "sieve ready: data dir %s, %d collections, %d documents, %d chunks, llm %s",
            settings.data_dir,
            len(collections.names()),
            collections.store.count_documents(),
            collections.store.count_chunks(),
            settings.llm,
        )
        # resumes unfinished jobs, forgets long-finished ones
        sieve = (shared.sieve or Sieve)(settings, collections, pipeline)
        jobs = JobQueue(
            sieve,
            settings.max_queued_jobs,
            settings.keep_jobs_days,
            UploadLimits.of(settings),
            settings.job_lease_s,
        )
        if shared.jobs:
            jobs.start()
        uploads = UploadChecker(settings)
        return cls(
            settings, embedder, collections, pruner, pipeline, jobs, uploads, chosen, sieve, triples
        )

    @property
    def default_collection(self) -> Collection:
        """The default collection (opened at start; the others on first use)."""
        return self.collections.default

    async def aclose(self) -> None:
        self.jobs.close()  # after the job in progress; queued ones resume at the next start
        for llm in self.pipeline.llms.values():
            await llm.aclose()
        if self.triples is not None:  # first: what it drains still reaches an open store
            self.triples.close()
        self.collections.close()
