"""Crash test: ingest while the server is killed with SIGKILL at random moments, restart, and
check that nothing acknowledged was lost and nothing half-stored remains.

    python -m bench.crash                      # 10 rounds, writes bench/results/crash.json
    python -m bench.crash --rounds 30 --seed 7

Each round starts ``sieve serve`` on the same data dir, uploads synthetic documents (each holds
a unique code phrase) from a thread, and kills the server after a random 0.3–3 s, usually in the
middle of an upload. Every other upload is asynchronous (``wait=false``: 202 with a queued
ingestion job), so kills also land while accepted jobs wait or run. After the next start it
checks, over HTTP:

- every upload the server acknowledged (201) is there, with all its chunks;
- every job the server accepted (202) is resumed and ends done, its document there;
- every document is complete: its chunk count equals the chunks returned for it;
- the FAISS index holds exactly the stored chunks (/healthz chunks = sum of chunk counts);
- a sample of acknowledged documents is found by searching its code phrase (BM25);
- an upload that was cut off is either fully there or absent (never partial).

No data set is needed: the documents are generated. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine, write_json
from tests.app.live_server import free_port

WORDS = [
    *("harbour", "lantern", "granite", "orchard", "meadow", "copper", "signal", "bridge"),
    *("ferry", "valley", "quarry", "beacon", "market", "tower", "canal", "glacier"),
    *("summit", "cellar", "forge", "garden", "mill", "river", "station", "tunnel"),
]


@dataclass
class Round:
    kill_after_s: float
    attempted: list[str] = field(default_factory=list)  # code phrases sent
    acknowledged: list[str] = field(default_factory=list)  # answered 201
    accepted: dict[str, str] = field(default_factory=dict)  # answered 202: code → job id


def document(code: str, rng: random.Random) -> dict[str, str]:
    """A few paragraphs of generated text; the code phrase appears in one sentence."""
    sentences = [
        f"The {rng.choice(WORDS)} near {rng.choice(WORDS).title()} {rng.choice(WORDS).title()} "
        f"was rebuilt in {rng.randint(1800, 2020)} by the {rng.choice(WORDS)} guild."
        for _ in range(rng.randint(8, 40))
    ]
    sentences.insert(rng.randrange(len(sentences)), f"Its registry code is {code}.")
    return {"title": f"Record {code}", "text": " ".join(sentences)}


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIEVE_LOG_LEVEL": "WARNING", "SIEVE_INDEX_SAVE_INTERVAL_S": "1"}
    cmd = [
        sys.executable, "-m", "app.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout_s} s")


def upload_until_killed(url: str, rnd: Round, rng: random.Random, prefix: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(10_000):  # bounded; the kill ends it much sooner
            code = f"{prefix}{i:04d}QX"
            rnd.attempted.append(code)
            params = {"wait": "false"} if i % 2 else {}
            try:
                r = client.post("/documents", json=document(code, rng), params=params)
            except httpx.HTTPError:
                return  # the server died mid-request
            if r.status_code == 201:
                rnd.acknowledged.append(code)
            elif r.status_code == 202:
                rnd.accepted[code] = r.json()["id"]


def finish_jobs(client: httpx.Client, rounds: list[Round], timeout_s: float = 300) -> list[str]:
    """Wait for every accepted job (resumed after the restart); problems for any that fail."""
    problems: list[str] = []
    deadline = time.time() + timeout_s
    for code, job_id in ((c, j) for r in rounds for c, j in r.accepted.items()):
        while True:
            job = client.get(f"/jobs/{job_id}").json()
            if job.get("status") in ("done", "failed") or time.time() > deadline:
                break
            time.sleep(0.2)
        if job.get("status") != "done":
            problems.append(f"accepted job {job_id} ({code}): {job.get('status')} {job}")
    return problems


def _settled(client: httpx.Client, limit_s: float = 120.0) -> None:
    """Wait until no job is queued or running: an upload cut off by a kill after its job was
    stored resumes at the restart, and counting while it commits would race with it."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        jobs = client.get("/jobs", params={"collection": "default", "limit": 500}).json()["jobs"]
        if all(j["status"] in ("done", "failed") for j in jobs):
            return
        time.sleep(0.2)


def check(url: str, rounds: list[Round]) -> dict[str, Any]:
    """Everything acknowledged is there and whole; FAISS agrees with SQLite; search finds it."""
    with httpx.Client(base_url=url, timeout=60) as client:
        _settled(client)
        docs: list[dict[str, Any]] = []
        while True:
            page = client.get("/documents", params={"limit": 1000, "offset": len(docs)}).json()
            docs += page["documents"]
            if len(docs) >= page["total"]:
                break
        by_code = {d["title"].removeprefix("Record "): d for d in docs}
        problems: list[str] = []
        acknowledged = [c for r in rounds for c in r.acknowledged]
        accepted = [c for r in rounds for c in r.accepted]
        for code in accepted:
            if code not in by_code:
                problems.append(f"accepted {code} (job done) but its document is missing")
        acknowledged += accepted  # accepted and finished: now as binding as a 201
        cut_off = [
            c
            for r in rounds
            for c in r.attempted
            if c not in set(r.acknowledged) and c not in r.accepted
        ]
        for code in acknowledged:
            if code not in by_code:
                problems.append(f"acknowledged {code} lost")
        for d in docs:
            detail = client.get(f"/documents/{d['id']}").json()
            if len(detail["chunks"]) != d["chunk_count"] or d["chunk_count"] == 0:
                problems.append(f"{d['title']}: {len(detail['chunks'])} of {d['chunk_count']}")
        chunks = sum(d["chunk_count"] for d in docs)
        health = client.get("/healthz").json()
        if health["chunks"] != chunks:
            problems.append(f"FAISS holds {health['chunks']} vectors, SQLite {chunks} chunks")
        sample = random.Random(0).sample(acknowledged, min(20, len(acknowledged)))
        found = 0
        for code in sample:
            # the retrieved candidates (before pruning): is the document in the rebuilt index?
            question = f"Which record has registry code {code}?"
            body = {"question": question, "retrieval": "lexical", "explain": True}
            candidates = client.post("/ask", json=body).json()["explain"]["candidates"]
            found += any(c["title"] == f"Record {code}" for c in candidates[:5])
        return {
            "documents": len(docs),
            "chunks": chunks,
            "acknowledged": len(acknowledged),
            "accepted_jobs": len(accepted),
            "cut_off": len(cut_off),
            "cut_off_present": sum(c in by_code for c in cut_off),
            "search_found": f"{found}/{len(sample)}",
            "graph_nodes": health["graph"]["nodes"],
            "problems": problems,
        }


def run(rounds: int, seed: int, data_dir: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    done: list[Round] = []
    for n in range(rounds):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(data_dir, port)
        wait_ready(url, proc)
        rnd = Round(kill_after_s=round(rng.uniform(0.3, 3.0), 2))
        uploader = threading.Thread(
            target=upload_until_killed, args=(url, rnd, rng, f"R{n:02d}D"), daemon=True
        )
        uploader.start()
        time.sleep(rnd.kill_after_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        uploader.join(60)
        done.append(rnd)
        print(
            f"round {n + 1}/{rounds}: killed after {rnd.kill_after_s} s, "
            f"{len(rnd.acknowledged)} acknowledged, {len(rnd.attempted)} attempted",
            flush=True,
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(data_dir, port)
    try:
        started = time.perf_counter()
        wait_ready(url, proc)
        restart_s = time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=60) as client:
            job_problems = finish_jobs(client, done)
        result = check(url, done)
        result["problems"] = job_problems + result["problems"]
    finally:
        proc.terminate()
        proc.wait(30)
    return {"rounds": rounds, "kills": len(done), "last_restart_s": round(restart_s, 2), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sieve-crash-") as tmp:
        result = run(args.rounds, args.seed, Path(tmp) / "data")
    payload = {"command": "python -m bench.crash " + " ".join(argv or sys.argv[1:]), **result}
    payload["machine"] = machine()
    path = write_json("crash", payload)
    print({k: v for k, v in result.items() if k != "problems"})
    for problem in result["problems"]:
        print("PROBLEM:", problem)
    print(f"written {path}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
