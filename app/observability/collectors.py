"""Metrics read at scrape time: what the store holds, the triple backlog, GPU memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.services import Services


class BuildCollector(Collector):
    """``sieve_build_info{version=…} 1`` (an Info metric cannot be shared between processes)."""

    def __init__(self, version: str) -> None:
        self.version = version

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "sieve_build", "Version of the running service.", value={"version": self.version}
        )


class ServicesCollector(Collector):
    """Documents, chunks and the triple-extraction backlog of the services bound now (none
    before the lifespan has built them, or after shutdown)."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services()
        if services is None:
            return
        store = services.collections.store  # totals over every collection, no names as labels
        yield GaugeMetricFamily(
            "sieve_documents", "Documents stored.", value=store.count_documents()
        )
        yield GaugeMetricFamily("sieve_chunks", "Chunks stored.", value=store.count_chunks())
        if services.triples is not None:
            yield GaugeMetricFamily(
                "sieve_triples_pending",
                "Chunks waiting for LLM triple extraction.",
                value=services.triples.pending,
            )


class GpuCollector(Collector):
    """CUDA memory per device, as torch's caching allocator sees it; nothing without CUDA."""

    def collect(self) -> Iterator[Metric]:
        if not torch.cuda.is_available():
            return
        allocated = GaugeMetricFamily(
            "sieve_gpu_memory_allocated_bytes",
            "GPU memory held by tensors.",
            labels=["device"],
        )
        reserved = GaugeMetricFamily(
            "sieve_gpu_memory_reserved_bytes",
            "GPU memory reserved by torch's caching allocator.",
            labels=["device"],
        )
        # both read allocator statistics: zero before CUDA is initialised, never initialise it
        for i in range(torch.cuda.device_count()):
            allocated.add_metric([f"cuda:{i}"], torch.cuda.memory_allocated(i))
            reserved.add_metric([f"cuda:{i}"], torch.cuda.memory_reserved(i))
        yield allocated
        yield reserved
