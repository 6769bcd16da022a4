"""What a load stored, skipped and failed, and how fast: the summary line of ``sieve ingest``
(in-process, against a server, or on Ray)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    added: int = 0
    duplicates: int = 0
    chunks: int = 0
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def count(self, stored: list[tuple[bool, int]]) -> None:
        for duplicate, chunk_count in stored:
            self.duplicates += duplicate
            self.added += not duplicate
            self.chunks += 0 if duplicate else chunk_count

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def summary(self, files: int) -> str:
        s = self.elapsed
        return (
            f"{self.added} added, {self.duplicates} already present, {len(self.failures)} failed;"
            f" {self.chunks} chunks in {s:.1f}s ({self.chunks / s:.1f} chunks/s,"
            f" {files / s:.1f} files/s)"
        )
