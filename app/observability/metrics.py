"""Prometheus metrics of one app instance: HTTP traffic, pipeline stages, ingest, GPU, build.

Each app owns its ``CollectorRegistry``: tests build many apps in one process, and the global
default registry would refuse the second set of names. When ``PROMETHEUS_MULTIPROC_DIR`` is set
(``sieve serve --ray`` sets it for its HTTP replicas), every process on the node writes its
values there and a scrape of any of them reports the sum over all of them. Every label takes
values from a bounded set (route templates, known stage and retriever names, ``other`` for the
rest), so a client can never grow the number of series.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from app.observability.collectors import BuildCollector, GpuCollector, ServicesCollector
from app.pipeline import RETRIEVERS, Answer

if TYPE_CHECKING:
    from app.services import Services

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
OTHER = "other"
STAGES = frozenset(
    {
        "embed",
        "vector_search",
        "lexical_search",
        "graph_search",
        "graph_link",
        "graph_subgraph",
        "graph_pagerank",
        "fuse",
        "prune",
        "rerank",
        "sentence_blend",
        "budget",
        "answer_scores",
        "llm",
        "llm_first_token",  # streamed answers only
        "total",
    }
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RATIO = tuple(i / 10 for i in range(11))  # 0.0, 0.1, … 1.0
COUNTS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    """The metric objects of one app; :meth:`attach` binds them to the built services."""

    def __init__(self, version: str) -> None:
        self.shared_dir = os.environ.get(MULTIPROC_ENV) or None  # summed with other processes
        if self.shared_dir is not None:
            os.makedirs(self.shared_dir, exist_ok=True)  # the metrics below open files there
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "sieve_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "sieve_http_request_duration_seconds",
            "HTTP request latency to the end of the response body (GET /metrics excluded).",
            ["method", "route"],
            buckets=SECONDS,
            registry=r,
        )
        self.uploads_in_flight = Gauge(
            "sieve_ingest_uploads_in_flight",
            "POST /documents requests being processed (the ingest queue depth).",
            multiprocess_mode="livesum",  # shared: the live processes' values, summed
            registry=r,
        )
        self.stage_seconds = Histogram(
            "sieve_pipeline_stage_duration_seconds",
            "Time spent in each stage of a question's pipeline.",
            ["stage"],
            buckets=SECONDS,
            registry=r,
        )
        self.tokens_before = Counter(
            "sieve_pipeline_tokens_before_pruning",
            "Tokens of the top-k reranked passages, unpruned.",
            registry=r,
        )
        self.tokens_after = Counter(
            "sieve_pipeline_tokens_after_pruning",
            "Tokens of the context sent to the LLM, after pruning and the budget.",
            registry=r,
        )
        self.compression = Histogram(
            "sieve_pipeline_compression_ratio",
            "Share of context tokens removed per answer (1 - after / before).",
            buckets=RATIO,
            registry=r,
        )
        self.candidates = Histogram(
            "sieve_pipeline_candidates",
            "Candidates each retriever contributed to a question's fused list.",
            ["retriever"],
            buckets=COUNTS,
            registry=r,
        )
        self.answers = Counter(
            "sieve_answers",
            "Answers by LLM backend and whether the pipeline abstained.",
            ["llm", "abstained"],
            registry=r,
        )
        self.degraded = Counter(
            "sieve_answers_degraded",
            "Answers given by the fallback because the chosen LLM backend failed.",
            registry=r,
        )
        self._services: Services | None = None
        # read at scrape time (and so never summed over processes: they read the same store)
        self._scraped: list[Collector] = [
            BuildCollector(version),
            ServicesCollector(lambda: self._services),
            GpuCollector(),
        ]
        for collector in self._scraped:
            r.register(collector)

    def attach(self, services: Services) -> None:
        """Report ``services``' store at scrape time (answers come through :meth:`observe`,
        given to ``Services.build`` as an observer)."""
        self._services = services

    def detach(self) -> None:
        self._services = None
        if self.shared_dir is not None:  # this process's live gauges leave the sum
            multiprocess.mark_process_dead(os.getpid(), self.shared_dir)

    def observe(self, answer: Answer) -> None:
        """Pipeline observer: record one finished answer. Never raises: a metrics bug must
        not fail the question it measures."""
        try:
            self._observe(answer)
        except Exception:  # the pipeline's observer contract
            logger.exception("recording the metrics of an answer failed")

    def _observe(self, answer: Answer) -> None:
        for stage, ms in answer.timings_ms.items():
            label = stage if stage in STAGES else OTHER
            self.stage_seconds.labels(label).observe(ms / 1000)
        self.tokens_before.inc(max(answer.tokens_before, 0))
        self.tokens_after.inc(max(answer.tokens_after, 0))
        self.compression.observe(answer.compression)
        for name, count in answer.retrievers.items():
            self.candidates.labels(name if name in RETRIEVERS else OTHER).observe(count)
        self.answers.labels(answer.llm or OTHER, "yes" if answer.abstained else "no").inc()
        if answer.degraded:
            self.degraded.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request (``route`` is a template or ``other``)."""
        method = method if method in METHODS else OTHER
        self.http_requests.labels(method, route, str(status)).inc()
        if route != "/metrics":
            self.http_seconds.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format (shared: the values of every
        process writing to ``shared_dir``, summed)."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        _forget_dead(self.shared_dir)
        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed, path=self.shared_dir)
        for collector in self._scraped:
            summed.register(collector)
        return generate_latest(summed)


def _forget_dead(shared_dir: str) -> None:
    """Take the live gauges of processes that died without detaching (a killed replica) out of
    the sum; their counters and histograms stay (what they counted happened)."""
    for path in glob.glob(os.path.join(shared_dir, "gauge_live*_*.db")):
        pid = os.path.basename(path).rsplit("_", 1)[-1].removesuffix(".db")
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(int(pid), shared_dir)
        except PermissionError:  # alive, another user's
            pass
