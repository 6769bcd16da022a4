"""Background extraction of (subject, relation, object) triples with an LLM.

When ``SIEVE_GRAPH_TRIPLES=llm``, every chunk added to a collection is queued here; a worker
thread asks the OpenAI-compatible server (``SIEVE_LLM_BASE_URL`` / ``SIEVE_LLM_MODEL``) for
triples in a strict JSON schema, validates them (graph.triples), caches them by chunk-text hash
and adds them to the knowledge graph as typed relation edges. Ingestion never waits for it.
A failing server or malformed output is logged and the chunk skipped (it keeps its
deterministic entities); a chunk deleted meanwhile is skipped too.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

import httpx

from app.collection import Collection
from app.llm import LLMError
from app.llm.openai import chat_sync
from graph.triples import (
    TRIPLES_SCHEMA,
    MalformedTriplesError,
    TripleCache,
    parse_triples,
    text_hash,
    triple_messages,
)

logger = logging.getLogger(__name__)


class TripleWorker:
    def __init__(
        self,
        cache: TripleCache,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 60.0,
        max_tokens: int = 512,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cache = cache
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self._queue: queue.Queue[tuple[Collection, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sieve-triples", daemon=True)
        self.stats = {"done": 0, "cached": 0, "failed": 0, "skipped": 0}
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> TripleWorker:
        self._thread.start()
        return self

    def submit(self, coll: Collection, chunk_ids: Sequence[int]) -> None:
        """Queue chunks of ``coll`` (the shape of :class:`Collection`'s ``on_graph_added``)."""
        for cid in chunk_ids:
            self._idle.clear()
            self._queue.put((coll, int(cid)))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is drained (tests, the CLI); False on timeout."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._client.close()
        self.cache.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            coll, cid = item
            try:
                self._process(coll, cid)
            except Exception:  # never let one chunk stop the worker
                logger.exception("triple extraction failed for chunk %d", cid)
                self.stats["failed"] += 1
            finally:
                if self._queue.empty():
                    self._idle.set()

    def _process(self, coll: Collection, cid: int) -> None:
        found = coll.chunks([cid])
        if not found:
            self.stats["skipped"] += 1  # deleted since it was queued
            return
        chunk = found[0]
        record = coll.store.get_document(chunk.document_id)
        title = record.title if record else ""
        text = " ".join(s.text for s in chunk.sentences)
        digest = text_hash(text)
        triples = self.cache.get(digest, self.model)
        if triples is not None:
            self.stats["cached"] += 1
        else:
            payload: dict[str, Any] = {
                "model": self.model,
                "messages": triple_messages(title, text),
                "max_tokens": self.max_tokens,
                "temperature": 0.0,
                "stream": False,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "triples", "strict": True, "schema": TRIPLES_SCHEMA},
                },
            }
            try:
                raw = chat_sync(self._client, self.base_url, payload)
                triples = parse_triples(raw)
            except (LLMError, MalformedTriplesError) as exc:
                logger.warning("no triples for chunk %d: %s", cid, exc)
                self.stats["failed"] += 1
                return
            self.cache.put(digest, self.model, triples)
        if coll.add_triples(cid, triples):
            self.stats["done"] += 1
        else:
            self.stats["skipped"] += 1
