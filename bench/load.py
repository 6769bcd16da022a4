"""Sieve under concurrent asks and uploads, driven from a second process.

    python -m bench.load                                  # 4 askers, 1 uploader, 60 s
    python -m bench.load --askers 8 --uploaders 2 --tag heavy

The real server runs as its own process (``sieve serve`` on a free loopback port, a fresh
temporary data dir, JSON logs at WARNING). The paragraphs of the pruner's dev-split SQuAD v1.1
articles are uploaded first as the base corpus (multipart, ``--base-batch`` files a request);
then this process, the load generator, runs for ``--duration-s`` (or until ``--max-requests``
asks + uploads): ``--askers`` tasks sending /ask with those articles' questions in a loop,
``--uploaders`` tasks uploading the other SQuAD dev paragraphs one JSON document a request
with a short pause, and a probe hitting /healthz every 0.5 s. Before the load, 10 sequential
asks and probes give the unloaded p50s; an ask "starves" when it takes over 10x the unloaded
ask p50 (a probe, over 10x the unloaded probe p50). Afterwards: GET /documents must count
base + uploaded documents, a final /ask must answer, and the server gets SIGTERM.
Writes bench/results/load[_TAG].json and .png. Only loopback traffic; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, machine, percentiles, write_json
from bench.squad import load_squad
from tests.app.live_server import free_port

KINDS = ("ask", "upload", "healthz")
PROBED = ("ask", "healthz")  # kinds with an unloaded p50 and a "starved" count
STARVE_FACTOR = 10.0
PROBE_EVERY_S = 0.5
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Sample:
    kind: str
    start_s: float  # since the load phase began
    ms: float
    outcome: str  # HTTP status, or the exception's type name

    @property
    def ok(self) -> bool:
        return self.outcome.isdigit() and 200 <= int(self.outcome) < 300


@dataclass
class Corpus:
    base: list[tuple[str, str]]  # (title, text) uploaded before the load
    extra: list[tuple[str, str]]  # uploaded one by one during the load
    questions: list[str]


def corpus() -> Corpus:
    """Paragraphs of the dev-split articles (those with questions) as the base, the rest to
    upload; the dev-split questions."""
    paragraphs, questions = load_squad(dev_only=True)
    asked = {i for _, i, _ in questions}
    return Corpus(
        [p for i, p in enumerate(paragraphs) if i in asked],
        [p for i, p in enumerate(paragraphs) if i not in asked],
        [q for q, _, _ in questions],
    )


# ---- the server process --------------------------------------------------------------------


def start_server(
    data: Path, port: int, llm: str, log: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIEVE_LOG_FORMAT": "json",
        "SIEVE_LOG_LEVEL": "WARNING",
        "SIEVE_LLM": llm,
        "HF_HUB_OFFLINE": "1",
        **(extra or {}),
    }
    sieve = Path(sys.executable).with_name("sieve")
    cmd = [str(sieve), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 180.0) -> float:
    """Seconds until /healthz answered 200; raises if the server exits or never answers."""
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.perf_counter() - t0 < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before /healthz")
            try:
                if client.get("/healthz").status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} not healthy after {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM, up to 30 s to exit, then SIGKILL."""
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
        killed = False
    except subprocess.TimeoutExpired:
        proc.kill()
        code, killed = proc.wait(10), True
    return {"exit_code": code, "killed": killed, "stop_s": round(time.perf_counter() - t0, 2)}


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process, from /proc (psutil is not a dependency)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def log_summary(log: Path) -> dict[str, Any]:
    """Level counts and the first few WARNING+ messages of the server's JSON log."""
    levels: Counter[str] = Counter()
    first: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
            level, message = str(item.get("level", "?")), str(item.get("message", ""))
        except (json.JSONDecodeError, AttributeError):
            level, message = "non-json", line
        levels[level] += 1
        if len(first) < 5:
            first.append(f"{level}: {message[:200]}")
    return {"lines_by_level": dict(levels), "first": first}


# ---- the load generator ----------------------------------------------------------------------


class Recorder:
    """Every request's outcome, plus the shared request budget of askers and uploaders."""

    def __init__(self, duration_s: float, max_requests: int, pid: int | None = None) -> None:
        self.pid = pid  # the server's: its RSS is sampled with each probe
        self.rss: list[tuple[float, float]] = []  # (s since t0, MB)
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + duration_s
        self.budget = max_requests
        self.samples: list[Sample] = []
        self.stages: dict[str, list[float]] = {}  # the server's /ask stats.timings_ms

    def add_stages(self, response: httpx.Response | None) -> None:
        if response is not None and response.status_code == 200:
            for stage, ms in response.json()["stats"]["timings_ms"].items():
                self.stages.setdefault(stage, []).append(ms)

    def more(self, counted: bool = True) -> bool:
        if time.perf_counter() >= self.deadline:
            return False
        if counted:
            if self.budget <= 0:
                return False
            self.budget -= 1
        return True

    async def timed(self, kind: str, call: Any) -> httpx.Response | None:
        start = time.perf_counter()
        response, outcome = None, ""
        try:
            response = await call
            outcome = str(response.status_code)
        except (httpx.HTTPError, OSError) as exc:
            outcome = type(exc).__name__
        ms = (time.perf_counter() - start) * 1000
        self.samples.append(Sample(kind, round(start - self.t0, 3), round(ms, 2), outcome))
        return response


async def asker(client: httpx.AsyncClient, rec: Recorder, questions: list[str]) -> None:
    for question in questions:  # bounded: the shuffled questions, the deadline and the budget
        if not rec.more():
            return
        rec.add_stages(await rec.timed("ask", client.post("/ask", json={"question": question})))


async def uploader(
    client: httpx.AsyncClient, rec: Recorder, docs: list[tuple[str, str]], pause_s: float
) -> list[bool]:
    """One JSON document a request; the duplicate flags of the accepted ones."""
    duplicates: list[bool] = []
    for title, text in docs:
        if not rec.more():
            break
        body = {"title": f"{title} [load]", "text": text}
        r = await rec.timed("upload", client.post("/documents", json=body))
        if r is not None and r.status_code == 201:
            duplicates += [d["duplicate"] for d in r.json()["documents"]]
        await asyncio.sleep(pause_s)
    return duplicates


async def prober(client: httpx.AsyncClient, rec: Recorder, stop: asyncio.Event) -> None:
    for _ in range(100_000):  # bounded; ends with the deadline or when told
        if stop.is_set() or not rec.more(counted=False):
            return
        await rec.timed("healthz", client.get("/healthz"))
        mb = rss_mb(rec.pid) if rec.pid else None
        if mb is not None:
            rec.rss.append((round(time.perf_counter() - rec.t0, 2), mb))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)


async def upload_base(
    client: httpx.AsyncClient, docs: list[tuple[str, str]], batch: int
) -> dict[str, Any]:
    """The base corpus in multipart requests, /healthz probed meanwhile."""
    rec = Recorder(3600, 0)
    stop = asyncio.Event()
    probe = asyncio.create_task(prober(client, rec, stop))
    t0, stored = time.perf_counter(), 0
    for i in range(0, len(docs), batch):
        files = [
            ("files", (f"{title}.txt", text.encode(), "text/plain"))
            for title, text in docs[i : i + batch]
        ]
        r = await client.post("/documents", files=files, timeout=600)
        r.raise_for_status()
        stored += sum(not d["duplicate"] for d in r.json()["documents"])
    seconds = time.perf_counter() - t0
    stop.set()
    await probe
    probes = [s.ms for s in rec.samples]
    return {
        "documents": len(docs),
        "stored": stored,
        "requests": -(-len(docs) // batch),
        "seconds": round(seconds, 1),
        "docs_per_s": round(len(docs) / seconds, 1),
        "healthz_probes": len(probes),
        "healthz_max_ms": round(max(probes), 1) if probes else None,
        "healthz_errors": sum(not s.ok for s in rec.samples),
    }


async def unloaded(
    client: httpx.AsyncClient, questions: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """p50 of 10 sequential asks and of 10 probes, with nothing else running (after two
    warm-up asks: the first ones load lazy state)."""
    for q in questions[-2:]:
        await client.post("/ask", json={"question": q})
    rec = Recorder(600, 20)
    for q in questions[:10]:
        r = await rec.timed("ask", client.post("/ask", json={"question": q}))
        if r is None or r.status_code != 200:
            raise RuntimeError(f"unloaded /ask failed: {r.status_code if r else 'no response'}")
        rec.add_stages(r)
    for _ in range(10):
        await rec.timed("healthz", client.get("/healthz"))
    p50 = {k: percentiles([s.ms for s in rec.samples if s.kind == k])["p50"] for k in PROBED}
    return p50, {stage: percentiles(v)["p50"] for stage, v in rec.stages.items()}


async def load_phase(
    client: httpx.AsyncClient,
    pid: int,
    corpus: Corpus,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[Recorder, list[bool], float]:
    rec = Recorder(args.duration_s, args.max_requests, pid)
    stop = asyncio.Event()
    questions = corpus.questions[10:]
    askers = [asker(client, rec, rng.sample(questions, len(questions))) for _ in range(args.askers)]
    shares = [corpus.extra[i :: args.uploaders] for i in range(args.uploaders)]
    uploaders = [uploader(client, rec, docs, args.upload_pause_s) for docs in shares]
    probe = asyncio.create_task(prober(client, rec, stop))
    results = await asyncio.wait_for(
        asyncio.gather(*askers, *uploaders), args.duration_s + 2 * REQUEST_TIMEOUT_S
    )
    wall = time.perf_counter() - rec.t0
    stop.set()
    await probe
    duplicates = list(itertools.chain.from_iterable(r for r in results if r is not None))
    return rec, duplicates, wall


# ---- the report ------------------------------------------------------------------------------


def upload_windows(samples: list[Sample]) -> list[tuple[float, float]]:
    return [(s.start_s, s.start_s + s.ms / 1000) for s in samples if s.kind == "upload"]


def overlaps(s: Sample, windows: list[tuple[float, float]]) -> bool:
    end = s.start_s + s.ms / 1000
    return any(a < end and s.start_s < b for a, b in windows)


def summarize(
    samples: list[Sample], wall_s: float, base_ms: dict[str, float]
) -> dict[str, dict[str, Any]]:
    windows = upload_windows(samples)
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [s for s in samples if s.kind == kind]
        ok = [s.ms for s in mine if s.ok]
        errors = Counter(s.outcome for s in mine if not s.ok)
        row: dict[str, Any] = {
            "count": len(mine),
            "errors": sum(errors.values()),
            "error_breakdown": dict(errors),
            "throughput_rps": round(len(ok) / wall_s, 2),
            "latency_ms": {**percentiles(ok), "max": round(max(ok), 1)} if ok else {},
        }
        if kind in base_ms:
            limit = STARVE_FACTOR * base_ms[kind]
            slow = [s for s in mine if s.ms > limit]
            row["unloaded_p50_ms"] = base_ms[kind]
            row["starved_limit_ms"] = round(limit, 1)
            row["starved"] = len(slow)
            row["starved_during_upload"] = sum(overlaps(s, windows) for s in slow)
            during = [s.ms for s in mine if overlaps(s, windows)]
            row["max_ms_during_upload"] = round(max(during), 1) if during else None
        out[kind] = row
    return out


def table(kinds: dict[str, dict[str, Any]]) -> str:
    head = f"{'kind':<8} {'n':>5} {'err':>4} {'req/s':>6} {'p50':>8} {'p95':>8} {'p99':>8}"
    rows = [head + f" {'max':>8} {'starved':>8}  (ms)"]
    for kind, r in kinds.items():
        lat = r["latency_ms"] or dict.fromkeys(("p50", "p95", "p99", "max"), float("nan"))
        starved = r.get("starved", "-")
        rows.append(
            f"{kind:<8} {r['count']:>5} {r['errors']:>4} {r['throughput_rps']:>6.2f} "
            f"{lat['p50']:>8.1f} {lat['p95']:>8.1f} {lat['p99']:>8.1f} {lat['max']:>8.1f} "
            f"{starved!s:>8}"
        )
    return "\n".join(rows)


def plot(result: dict[str, Any], samples: list[Sample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = {"ask": "tab:blue", "upload": "tab:orange", "healthz": "tab:green"}
    for kind in KINDS:
        ok = [s for s in samples if s.kind == kind and s.ok]
        bad = [s for s in samples if s.kind == kind and not s.ok]
        a.scatter([s.start_s for s in ok], [s.ms for s in ok], s=6, c=colors[kind], label=kind)
        if bad:
            a.scatter([s.start_s for s in bad], [s.ms for s in bad], s=30, marker="x", c="red")
    kinds = result["kinds"]
    for kind in ("ask", "healthz"):
        limit = kinds[kind]["starved_limit_ms"]
        a.axhline(limit, ls="--", lw=0.8, c=colors[kind], label=f"{kind} starved > {limit:.0f}")
    a.set_yscale("log")
    a.set_xlabel("s since the load began (request start)")
    a.set_ylabel("latency, ms (log)")
    a.legend(fontsize=8, markerscale=2, loc="upper left")
    if result["rss_timeline_mb"]:
        r = a.twinx()
        t, mb = zip(*result["rss_timeline_mb"], strict=True)
        r.plot(t, mb, c="grey", lw=1.2)
        r.set_ylabel("server RSS, MB (grey line)", color="grey")
    a.set_title(
        f"{result['askers']} askers + {result['uploaders']} uploaders + /healthz probe, "
        f"{result['corpus']['base_documents']} base docs",
        fontsize=10,
    )
    stats = ["p50", "p95", "p99", "max"]
    width = 0.8 / len(KINDS)
    for i, kind in enumerate(KINDS):
        lat = kinds[kind]["latency_ms"]
        xs = [j + (i - 1) * width for j in range(len(stats))]
        b.bar(xs, [lat.get(s, 0) for s in stats], width, color=colors[kind], label=kind)
    b.set_xticks(range(len(stats)), stats)
    b.set_yscale("log")
    b.set_ylabel("ms (log)")
    b.set_title("latency percentiles by kind", fontsize=10)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---- main ------------------------------------------------------------------------------------


async def drive(url: str, pid: int, corpus: Corpus, args: argparse.Namespace) -> dict[str, Any]:
    """Everything the load generator does against a healthy server."""
    rng = random.Random(args.seed)
    rng.shuffle(corpus.extra)
    limits = httpx.Limits(max_connections=args.askers + args.uploaders + 4)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as c:
        base = await upload_base(c, corpus.base, args.base_batch)
        rss_base = rss_mb(pid)
        rng.shuffle(corpus.questions)
        base_ms, base_stages = await unloaded(c, corpus.questions)
        rec, duplicates, wall = await load_phase(c, pid, corpus, args, rng)
        listed = (await c.get("/documents", params={"limit": 1})).json()["total"]
        final = await c.post("/ask", json={"question": corpus.questions[0]})
    uploaded_ok = sum(not d for d in duplicates)
    return {
        "base_ingest": base,
        "rss_after_base_ingest": rss_base,
        "wall_s": round(wall, 1),
        "kinds": summarize(rec.samples, wall, base_ms),
        "server_ask_stage_p50_ms": {
            stage: {"unloaded": base_stages.get(stage), "loaded": percentiles(v)["p50"]}
            for stage, v in rec.stages.items()
        },
        "documents": {
            "base_stored": base["stored"],
            "uploaded_ok": uploaded_ok,
            "uploaded_duplicates": len(duplicates) - uploaded_ok,
            "listed": listed,
            "all_listed": listed == base["stored"] + uploaded_ok,
        },
        "final_ask": {
            "status": final.status_code,
            "answered": final.status_code == 200 and bool(final.json().get("answer")),
        },
        "rss_timeline_mb": rec.rss,
        "samples": [asdict(s) for s in rec.samples],
    }


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Sample]]:
    corpus_ = corpus()
    if args.base_docs:
        corpus_.base = corpus_.base[: args.base_docs]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc = start_server(Path(tmp) / "data", port, args.llm, log)
        try:
            startup_s = wait_healthy(proc, url)
            rss_before = rss_mb(proc.pid)
            out = asyncio.run(drive(url, proc.pid, corpus_, args))
            rss_after = rss_mb(proc.pid)
        finally:
            stopped = stop_server(proc)
        logs = log_summary(log)
    samples = [Sample(**s) for s in out.pop("samples")]
    result = {
        "command": " ".join(["python", "-m", "bench.load", *sys.argv[1:]]),
        "server": "sieve serve as a separate process, JSON logs at WARNING, fresh data dir",
        "server_env": {k: v for k, v in os.environ.items() if k.startswith("SIEVE_")},
        "client": "httpx.AsyncClient in this process (one asyncio loop), loopback",
        "llm": args.llm,
        "duration_s": args.duration_s,
        "max_requests": args.max_requests,
        "askers": args.askers,
        "uploaders": args.uploaders,
        "upload_pause_s": args.upload_pause_s,
        "corpus": {
            "base_documents": len(corpus_.base),
            "base": "paragraphs of the pruner's dev-split SQuAD v1.1 dev articles",
            "uploads_from": "the other SQuAD v1.1 dev paragraphs, one JSON document a request",
            "questions": len(corpus_.questions),
        },
        "startup_s": round(startup_s, 1),
        "server_rss_mb": {
            "before_base_ingest": rss_before,
            "before_load": out.pop("rss_after_base_ingest"),
            "after_load": rss_after,
        },
        **out,
        "targets": {},
        "server_stop": stopped,
        "server_log": logs,
        "seed": args.seed,
        "machine": machine(),
    }
    kinds = result["kinds"]
    result["targets"] = {
        "zero_errors": all(k["errors"] == 0 for k in kinds.values()),
        "no_ask_starved": kinds["ask"]["starved"] == 0,
        "no_healthz_starved": kinds["healthz"]["starved"] == 0,
    }
    return result, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--askers", type=int, default=4)
    parser.add_argument("--uploaders", type=int, default=1)
    parser.add_argument("--max-requests", type=int, default=2000, help="asks + uploads")
    parser.add_argument("--llm", choices=["extractive", "llamacpp"], default="extractive")
    parser.add_argument("--upload-pause-s", type=float, default=0.2)
    parser.add_argument("--base-docs", type=int, default=0, help="0: all dev-split paragraphs")
    parser.add_argument("--base-batch", type=int, default=100, help="files per base upload")
    parser.add_argument("--tag", default="", help="results go to load_TAG.json/png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.askers < 0 or args.uploaders < 1 or args.duration_s <= 0:
        parser.error("need --uploaders >= 1, --askers >= 0 and --duration-s > 0")
    result, samples = run(args)
    name = "load" + (f"_{args.tag}" if args.tag else "")
    write_json(name, result)
    plot(result, samples, RESULTS / f"{name}.png")
    print(table(result["kinds"]))
    print("server /ask stage p50 ms (unloaded -> loaded):")
    for stage, v in result["server_ask_stage_p50_ms"].items():
        print(f"  {stage:<16} {v['unloaded']!s:>9} -> {v['loaded']}")
    print("base ingest:", result["base_ingest"])
    print("documents:", result["documents"], "final ask:", result["final_ask"])
    print("rss MB:", result["server_rss_mb"], "stop:", result["server_stop"])
    print("targets:", result["targets"])
    print(f"wrote {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
