"""Sieve on a local Ray cluster against the single process, on the same machine.

    python -m bench.cluster                       # ~15 min on 2 cores
    python -m bench.cluster --documents 300 --seconds 20 --levels 1 4

1. **Bulk ingest**: the paragraphs of the dev-split SQuAD v1.1 articles written as .txt files,
   loaded by ``sieve ingest`` and by ``sieve ingest --ray`` (each a whole process, into a fresh
   data dir): chunks/s from each command's own summary, and wall time including start-up.
2. **Serving**: ``sieve serve``, ``sieve serve --ray --replicas 2`` (one pruner and one
   embedder deployment) and the same with the collection on its own replica
   (``--collection-replicas 1``: every question takes one more hop), each a fresh process over a
   copy of the plain CLI's data dir; per concurrency level, that many askers send /ask for
   ``--seconds`` with questions not asked before at that level (every server gets the same
   questions; their pruner caches start empty).

Writes bench/results/cluster.json and .png. On one machine Ray can only add overhead (process
hops, pickling, several model copies on the same cores); what it buys is the next machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, machine, write_json
from bench.concurrency import level
from bench.load import corpus, rss_mb, stop_server, wait_healthy
from tests.app.live_server import free_port

LEVELS = (1, 4, 16)
TIMEOUT_S = 300.0
REPLICA = "x-sieve-replica"
SUMMARY = re.compile(r"(\d+) chunks in ([\d.]+)s \(([\d.]+) chunks/s")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "SIEVE_LOG_LEVEL": "WARNING",
        "SIEVE_LLM": "extractive",
        "HF_HUB_OFFLINE": "1",
        "SIEVE_RATE_LIMIT_PER_S": "0",
        "SIEVE_MAX_PENDING_ASKS": "64",  # the levels measure throughput, not the 503 guard
    }


def _sieve() -> str:
    return str(Path(sys.executable).with_name("sieve"))


def ingest(folder: Path, data: Path, ray: bool) -> dict[str, Any]:
    cmd = [_sieve(), "ingest", "--data-dir", str(data), str(folder)]
    if ray:
        cmd.insert(2, "--ray")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    found = SUMMARY.search(out.stdout)
    if out.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return {
        "command": "sieve ingest" + (" --ray" if ray else ""),
        "chunks": int(found.group(1)),
        "seconds": float(found.group(2)),  # from the command's tally (after start-up)
        "chunks_per_s": float(found.group(3)),
        "process_wall_s": round(wall, 1),  # includes loading models (and starting Ray)
    }


def serve(
    data: Path, questions: list[str], args: argparse.Namespace, flags: list[str]
) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [_sieve(), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)]
    cmd += flags
    log = data.parent / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=_env(), stdout=sink, stderr=subprocess.STDOUT)
    try:
        startup = wait_healthy(proc, url, timeout_s=600)
        replicas = args.replicas if "--ray" in flags else 1
        levels = asyncio.run(_levels(url, questions, args, replicas))
        rss = rss_mb(proc.pid)
    finally:
        stopped = stop_server(proc)
    return {
        "command": " ".join(["sieve serve", *flags]),
        "startup_s": round(startup, 1),
        "driver_rss_mb": rss,  # the sieve process only (Ray's replicas are other processes)
        "levels": levels,
        "stop": stopped,
    }


async def _levels(
    url: str, questions: list[str], args: argparse.Namespace, replicas: int
) -> list[Any]:
    rows = []
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as client:
        seen = set()
        for q in questions[:4]:  # warm-up: lazy state, first forward passes
            seen.add((await client.post("/ask", json={"question": q})).headers.get(REPLICA))
        for _ in range(4 * replicas):
            seen.add((await client.get("/healthz")).headers.get(REPLICA))
        answering = len(seen - {None}) or 1
        if answering != replicas:  # e.g. a replica Ray could not place: the run would mislead
            raise RuntimeError(f"{answering} HTTP replicas answer, {replicas} were asked for")
        left = questions[4:]
        for askers in args.levels:
            row = await level(client, left, askers, args.seconds)
            left = left[row["answered"] + row["errors"] + askers :]
            print(
                f"  {askers} askers: {row['questions_per_s']} q/s, p50 "
                f"{row['latency_ms'].get('p50')} ms, errors {row['errors']}",
                flush=True,
            )
            rows.append(row)
    return rows


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, run in result["serving"].items():
        x = [r["askers"] for r in run["levels"]]
        left.plot(x, [r["questions_per_s"] for r in run["levels"]], "o-", label=name)
        left.set_xticks(x)
    left.set_xscale("log", base=2)
    left.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    left.set_xlabel("concurrent askers")
    left.set_ylabel("questions / s")
    left.set_ylim(bottom=0)
    left.legend()
    left.set_title("/ask throughput, same machine")
    names = [r["command"] for r in result["ingest"]]
    right.bar(names, [r["chunks_per_s"] for r in result["ingest"]])
    right.set_ylabel("chunks / s")
    right.set_title(f"bulk ingest, {result['ingest'][0]['chunks']} chunks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--documents", type=int, default=1000, help="paragraphs to ingest")
    ap.add_argument("--seconds", type=float, default=40.0, help="per concurrency level")
    ap.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    ap.add_argument("--replicas", type=int, default=2, help="HTTP replicas on Ray")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON only")
    args = ap.parse_args(argv)
    if args.replot:
        plot(json.loads((RESULTS / "cluster.json").read_text()), RESULTS / "cluster.png")
        return 0
    if args.documents <= 0 or args.seconds <= 0 or any(n <= 0 for n in args.levels):
        ap.error("documents, seconds and levels must be > 0")
    data = corpus()
    docs = (data.base + data.extra)[: args.documents]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "docs"
        folder.mkdir()
        for i, (title, text) in enumerate(docs):
            (folder / f"{i:05d}.txt").write_text(f"{title}\n\n{text}\n")
        print(f"ingesting {len(docs)} documents", flush=True)
        runs = [ingest(folder, root / "plain" / "data", ray=False)]
        runs.append(ingest(folder, root / "ray" / "data", ray=True))
        for r in runs:
            print(f"  {r['command']}: {r['chunks_per_s']} chunks/s", flush=True)
        serving = {}
        on_ray = ["--ray", "--replicas", str(args.replicas)]
        modes = {
            "single process": [],
            "ray serve": on_ray,
            "ray serve, collection on its own replica": [*on_ray, "--collection-replicas", "1"],
        }
        for i, (name, flags) in enumerate(modes.items()):
            copy = root / f"serve-{i}" / "data"
            shutil.copytree(root / "plain" / "data", copy)
            print(name, flush=True)
            serving[name] = serve(copy, data.questions, args, flags)
    result = {
        "command": " ".join(["python", "-m", "bench.cluster", *sys.argv[1:]]),
        "data": "paragraphs of SQuAD v1.1 dev-split articles (ingest) and their questions "
        "(asks): the pruner's training distribution; extractive answers",
        "documents": len(docs),
        "ingest": runs,
        "serving": serving,
        "machine": machine(),
    }
    print(write_json("cluster", result))
    plot(result, RESULTS / "cluster.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
