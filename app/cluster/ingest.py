"""``sieve ingest --ray``: a bulk load on a Ray cluster, with Ray Data.

1. **Parse and chunk** (tasks, as many as the cluster has CPUs): each file is read, parsed with
   the server's extraction limits and chunked with the collection's settings
   (:func:`app.prepared.prepare`). A document whose content the collection already holds is
   marked known and goes no further: a load that was interrupted is resumed by running the same
   command again (what was committed is skipped before anything is embedded).
2. **Embed** (``map_batches`` on a pool of actors, each loading the embedder once; one GPU per
   actor when the cluster has GPUs).
3. **Commit** (here, the driver): batches of documents go through
   :meth:`Collection.ingest_prepared`, the same all-or-nothing path as an upload: SQLite first,
   then FAISS, BM25 and the graph, so a failed batch leaves nothing behind.

The driver is the collection's only writer; a server on the same data dir picks the documents
up at its next request, as after a plain ``sieve ingest``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from app.cli.common import embedder_for
from app.cli.tally import Tally
from app.cluster import start_ray
from app.collection_config import CollectionConfig
from app.parsing import ExtractionLimits
from app.settings import Settings
from app.sieve import Sieve

COMMIT_DOCUMENTS = 64  # documents per commit (one SQLite transaction each)


@dataclass(frozen=True)
class RayIngestOptions:
    address: str | None = None  # None: a local cluster of this machine's cores
    embedders: int = 0  # embedding actors; 0: one per GPU, else one (CPU)
    commit_documents: int = COMMIT_DOCUMENTS


def parse_row(
    row: dict[str, Any], config: CollectionConfig, limits: ExtractionLimits, known: set[str]
) -> dict[str, Any]:
    """One file (``file``: absolute, for the worker; ``path``: as named, for the report) →
    its prepared document (pickled), or why it failed, or that it is known."""
    from app.parsing import parse_document
    from app.prepared import prepare

    path = Path(row["file"])
    out: dict[str, Any] = {"path": row["path"], "prepared": b"", "error": "", "known": False}
    try:
        parsed = parse_document(path.read_bytes(), path.name, None, limits)
        prepared = prepare(parsed, path.name, config.chunking)
    except Exception as exc:  # reported per file at the end, like the plain CLI
        out["error"] = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        return out
    if prepared.content_hash in known:
        out["known"] = True
    else:
        out["prepared"] = pickle.dumps(prepared)
    return out


class EmbedBatch:
    """A Ray Data actor: loads the embedder once, embeds every chunk of a batch of documents in
    one call, and adds each document's (chunks x dim) vectors as float32 bytes."""

    def __init__(self, settings: Settings) -> None:
        self.embedder = embedder_for(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prepared = [pickle.loads(b) if len(b) else None for b in batch["prepared"]]
        texts = [t for p in prepared if p is not None for t in p.texts()]
        matrix = self.embedder.encode(texts) if texts else np.zeros((0, self.embedder.dim))
        vectors, pos = [], 0
        for p in prepared:
            n = len(p.chunks) if p is not None else 0
            vectors.append(np.ascontiguousarray(matrix[pos : pos + n], np.float32).tobytes())
            pos += n
        batch["vectors"] = np.array(vectors, dtype=object)
        return batch


def without_secrets(settings: Settings) -> Settings:
    """What the embedding actors need of the settings: no keys travel to the cluster."""
    return settings.model_copy(update={"admin_key": "", "api_key": "", "llm_api_key": ""})


def ingest_with_ray(
    files: Sequence[Path], settings: Settings, collection: str, options: RayIngestOptions
) -> Tally:
    """Load ``files`` into ``collection`` of ``settings.data_dir`` through Ray (see the module
    docstring); the tally counts added, already present and failed files as the CLI does."""
    from app.collections import Collections
    from app.uploads import UploadLimits

    ray = start_ray(options.address)
    collections = Collections(settings, embedder_for(settings))
    try:
        collections.create(collection)
        coll = collections.get(collection)
        sieve = Sieve(settings, collections)
        config = CollectionConfig.of(settings, collection)
        known = collections.store.content_hashes(collection)
        limits = UploadLimits.of(settings).extraction
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = options.embedders or max(gpus, 1)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the same order as the plain CLI
        ctx.enable_progress_bars = False  # ours below counts documents
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # says so
        ds = (
            ray.data.from_items([{"file": str(p.resolve()), "path": str(p)} for p in files])
            # half a CPU each: reading files waits on disk, and remote arguments unlike the
            # embedders' keep Ray Data from fusing the two stages into the embedding actors
            .map(
                parse_row,
                fn_kwargs={"config": config, "limits": limits, "known": known},
                num_cpus=0.5,
            )
            .map_batches(
                EmbedBatch,
                fn_constructor_kwargs={"settings": without_secrets(settings)},
                batch_size=16,
                batch_format="numpy",
                udf_modifying_row_count=False,
                concurrency=actors,
                num_gpus=1 if gpus else 0,
            )
        )
        dim = coll.embedder.dim
        return _commit(ds, len(files), sieve, collection, dim, options.commit_documents)
    finally:
        collections.close()


def _commit(
    ds: Any, files: int, sieve: Sieve, collection: str, dim: int, batch_documents: int
) -> Tally:
    tally = Tally()
    # (not ds.count(): with a map_batches stage that would run the whole pipeline once more)
    bar = tqdm(total=files, unit="file", desc="ingesting (ray)", dynamic_ncols=True)
    for batch in ds.iter_batches(batch_size=batch_documents, batch_format="numpy"):
        columns = ("path", "prepared", "vectors", "error", "known")
        rows = list(zip(*(batch[c] for c in columns), strict=True))
        tally.duplicates += sum(bool(k) for *_, k in rows)
        tally.failures += [f"{path}: {error}" for path, _, _, error, _ in rows if error]
        todo = [(path, pickle.loads(p), v) for path, p, v, _, _ in rows if len(p)]
        if todo:
            prepared = [p for _, p, _ in todo]
            vectors = [np.frombuffer(v, np.float32).reshape(-1, dim) for _, _, v in todo]
            try:
                results = sieve.ingest_prepared(collection, prepared, vectors)
            except Exception as exc:  # the batch is rolled back: each of its files failed
                tally.failures += [f"{path}: {exc}" for path, _, _ in todo]
            else:
                tally.count([(r.duplicate, r.document.chunk_count) for r in results])
        bar.update(len(rows))
        bar.set_postfix(chunks=tally.chunks, chunks_s=f"{tally.chunks / tally.elapsed:.1f}")
    bar.close()
    return tally
