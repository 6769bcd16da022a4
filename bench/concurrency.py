"""Throughput and latency of /ask as concurrency grows (1, 2, 4, 8 askers), on a real server.

    python -m bench.concurrency                                  # defaults: auto precision
    python -m bench.concurrency --env SIEVE_PRECISION=fp32 --env SIEVE_PRUNER_MAX_BATCH_WINDOWS=8 \
        --tag fp32-unbatched                                     # the old behaviour, for A/B

``sieve serve`` runs as its own process on a fresh data dir (as in bench.load) with the paragraphs
of the dev-split SQuAD v1.1 articles uploaded; then, per level, that many askers send /ask for
``--seconds`` with questions never asked before in the run (so the (question, passage) cache
cannot flatter the figures). Per level: questions/s, p50/p95 latency, and from /healthz the
pruner's merged calls (requests per forward call). Writes bench/results/concurrency[_TAG].json
and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, machine, percentiles, write_json
from bench.load import (
    corpus,
    rss_mb,
    start_server,
    stop_server,
    upload_base,
    wait_healthy,
)
from tests.app.live_server import free_port

LEVELS = (1, 2, 4, 8)
TIMEOUT_S = 120.0


async def level(
    client: httpx.AsyncClient, questions: list[str], askers: int, seconds: float
) -> dict[str, Any]:
    """``askers`` loops taking unique questions until ``seconds`` have passed."""
    pending = iter(questions)
    times: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def ask() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            question = next(pending, None)
            if question is None:
                return
            t0 = time.perf_counter()
            try:
                r = await client.post("/ask", json={"question": question})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                times.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(ask() for _ in range(askers)))
    wall = time.perf_counter() - t0
    return {
        "askers": askers,
        "answered": len(times),
        "errors": errors,
        "wall_s": round(wall, 1),
        "questions_per_s": round(len(times) / wall, 3),
        "latency_ms": percentiles(times),
    }


async def batches(client: httpx.AsyncClient) -> dict[str, int]:
    return dict((await client.get("/healthz")).json().get("models", {}).get("pruner_batches", {}))


async def drive(url: str, args: argparse.Namespace) -> dict[str, Any]:
    data = corpus()
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as client:
        base = await upload_base(client, data.base, 100)
        questions = list(data.questions)
        for q in questions[:3]:  # warm-up: lazy state, first forward passes
            await client.post("/ask", json={"question": q})
        questions = questions[3:]
        models = (await client.get("/healthz")).json().get("models")
        levels = []
        for askers in args.levels:
            before = await batches(client)
            row = await level(client, questions, askers, args.seconds)
            questions = questions[row["answered"] + row["errors"] + askers :]
            after = await batches(client)
            calls = after.get("calls", 0) - before.get("calls", 0)
            served = after.get("requests", 0) - before.get("requests", 0)
            row["requests_per_pruner_call"] = round(served / calls, 2) if calls else None
            levels.append(row)
            print(
                f"{askers} askers: {row['questions_per_s']} q/s, "
                f"p50 {row['latency_ms'].get('p50')} ms, p95 {row['latency_ms'].get('p95')} ms, "
                f"{row['requests_per_pruner_call']} requests/call",
                flush=True,
            )
        return {"base_ingest": base, "models": models, "levels": levels}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["levels"]
    x = [r["askers"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(x, [r["questions_per_s"] for r in rows], "o-")
    left.set_xlabel("concurrent askers")
    left.set_ylabel("questions / s")
    left.set_xticks(x)
    left.set_ylim(bottom=0)
    left.set_title("throughput")
    for key in ("p50", "p95"):
        right.plot(x, [r["latency_ms"].get(key, 0) / 1000 for r in rows], "o-", label=key)
    right.set_xlabel("concurrent askers")
    right.set_ylabel("seconds")
    right.set_xticks(x)
    right.legend()
    models = result.get("models") or {}
    right.set_title(f"/ask latency ({models.get('precision', '?')}, {result['tag'] or 'default'})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="per concurrency level")
    ap.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--tag", default="")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON only")
    args = ap.parse_args(argv)
    name = f"concurrency_{args.tag}" if args.tag else "concurrency"
    if args.replot:
        plot(json.loads((RESULTS / f"{name}.json").read_text()), RESULTS / f"{name}.png")
        return 0
    if any(n <= 0 for n in args.levels) or args.seconds <= 0:
        ap.error("levels and seconds must be > 0")
    env = dict(kv.split("=", 1) for kv in args.env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc = start_server(Path(tmp) / "data", port, "extractive", log, env)
        try:
            startup_s = wait_healthy(proc, url)
            out = asyncio.run(drive(url, args))
            rss = rss_mb(proc.pid)
        finally:
            stopped = stop_server(proc)
    result = {
        "command": " ".join(["python", "-m", "bench.concurrency", *sys.argv[1:]]),
        "tag": args.tag,
        "server_env": env,
        "server": "sieve serve as a separate process, extractive answers, fresh data dir; "
        "base corpus: paragraphs of the dev-split SQuAD v1.1 articles (training distribution)",
        "startup_s": round(startup_s, 1),
        "server_rss_mb_after": rss,
        **out,
        "server_stop": stopped,
        "machine": machine(),
    }
    first, last = result["levels"][0], result["levels"][-1]
    if first["questions_per_s"]:
        result["throughput_ratio_last_vs_first"] = round(
            last["questions_per_s"] / first["questions_per_s"], 2
        )
    print(write_json(name, result))
    plot(result, RESULTS / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
