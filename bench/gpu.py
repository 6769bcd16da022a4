"""The GPU path, measured in one run: pruner, embedder and /ask on a CUDA device.

    python -m bench.gpu                     # needs a GPU and ../shared/data; ~4 min on an H100

Pruner: p50 of ``process()`` (prune + rerank, one pass) over 20 and 50 passages in bf16 and fp32,
and agreement of bf16 with fp32 (keep decisions at the default threshold, top passage) on 40 cases
of every family. Embedder: passages/s in bf16 and fp32. End to end: the paragraphs of SQuAD v1.1
dev ingested in-process (chunks/s), then /ask p50 in-process on 100 dev-split questions, and
questions/s with 1 and 8 concurrent askers (threads into the same pipeline, unique questions).
FAISS stays on the CPU (faiss-gpu wheels lack sm_90 kernels). Writes bench/results/gpu.json.
Exits with a clear message when no GPU is visible: nothing here is emulated.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from app.services import Services
from app.settings import Settings
from bench.common import data_dir, machine, percentiles, write_json
from bench.families import FAMILIES, load
from bench.precision import agreement, run_family
from bench.squad import ingest, load_squad
from index import Embedder
from pruner import BlendedPruner, ContextPruner
from pruner.inference import CHECKPOINT

REPEATS = 20


def pruner_latency(pruner: ContextPruner, question: str, passages: list[list[str]]) -> float:
    for _ in range(3):
        pruner.process(question, passages, 0.0)  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        pruner.process(question, passages, 0.0)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)["p50"]


def pruner_report() -> dict[str, Any]:
    data = data_dir()
    cases = {f: load(f, data, 40) for f in FAMILIES}
    pool = [c.sentences for case in cases["squad"] for c in case.candidates]
    question = cases["squad"][0].question
    out: dict[str, Any] = {"latency_ms": {}}
    outputs = {}
    for precision in ("fp32", "bf16"):
        pruner = ContextPruner(CHECKPOINT, device="cuda", precision=precision, cache_size=0)
        out["latency_ms"][precision] = {
            str(n): pruner_latency(pruner, question, pool[:n]) for n in (20, 50)
        }
        outputs[precision] = {f: run_family(pruner, cases[f]) for f in FAMILIES}
        threshold = pruner.default_threshold
        logging.info("pruner %s: %s", precision, out["latency_ms"][precision])
    out["bf16_agreement_with_fp32"] = {
        f: agreement(outputs["fp32"][f], outputs["bf16"][f], threshold) for f in FAMILIES
    }
    return out


def embedder_report(texts: list[str]) -> dict[str, float]:
    out = {}
    for precision in ("fp32", "bf16"):
        emb = Embedder(device="cuda", batch_size=64, precision=precision).load()
        emb.encode(texts[:128])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        emb.encode(texts)
        torch.cuda.synchronize()
        out[precision] = round(len(texts) / (time.perf_counter() - t0), 1)
    return out


def service_report(paragraphs: list[tuple[str, str]], questions: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", device="cuda", ask_threads=8)
        services = Services.build(settings)
        _, ingested = ingest(services.default_collection, paragraphs, 64)
        options = services.sieve.default_options()

        def ask(q: str) -> float:
            t0 = time.perf_counter()
            asyncio.run(services.pipeline.ask(q, options))
            return (time.perf_counter() - t0) * 1000

        for q in questions[:3]:
            ask(q)
        single = [ask(q) for q in questions[3:103]]
        rates = {}
        rest = questions[103:]
        for workers in (1, 8):
            batch, rest = rest[: 24 * workers], rest[24 * workers :]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(ask, batch))
            rates[str(workers)] = round(len(batch) / (time.perf_counter() - t0), 2)
        asyncio.run(services.aclose())
    model = services.pruner
    if isinstance(model, BlendedPruner):
        model = model.inner
    return {
        "ingest": ingested,
        "ask_in_process_ms": percentiles(single),
        "questions_per_s": rates,
        "ratio_8_vs_1": round(rates["8"] / rates["1"], 2),
        "precision": model.precision if isinstance(model, ContextPruner) else None,
    }


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not torch.cuda.is_available():
        sys.exit("bench.gpu needs a CUDA GPU and torch sees none: nothing was measured")
    paragraphs, questions = load_squad(dev_only=True)
    result = {
        "machine": machine(),
        "pruner": pruner_report(),
        "embedder_passages_per_s": embedder_report([t for _, t in paragraphs[:2048]]),
        "service": service_report(paragraphs, [q for q, _, _ in questions]),
        "command": "python -m bench.gpu",
    }
    print(write_json("gpu", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
