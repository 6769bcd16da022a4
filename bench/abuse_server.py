"""The Sieve server that bench.abuse attacks, and how it is measured: ``sieve serve`` with auth
on in its own process session, the RSS and CPU of its process tree (parse children included),
a Monitor that samples RSS and probes GET paths during an attack, the wait for it to settle,
and the scan of its log for tracebacks and 5xx lines."""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.abuse_payloads import prose
from bench.crash import document
from bench.load import rss_mb, stop_server, wait_healthy
from tests.app.live_server import free_port

HOST = "127.0.0.1"  # the only address this bench talks to
COLLECTION = "abuse"
PROBE_TIMEOUT_S = 5.0
SAMPLE_EVERY_S, PROBE_EVERY_S = 0.05, 0.1
IDLE_CPU_S = 0.3  # server CPU seconds per wall second below which it counts as idle


# ---- the server ------------------------------------------------------------------------------


@dataclass
class Keys:
    read: str
    write: list[str]  # one or more: attack 6 spreads its uploads over several


class Server:
    """``sieve serve`` with auth on, in its own session (so its parse children die with it)."""

    def __init__(self, root: Path) -> None:
        self.data, self.log = root / "data", root / "server.log"
        self.admin_key = secrets.token_urlsafe(32)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.restarts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start it; seconds until /healthz answered (the embedding model loads first)."""
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        env = {
            **os.environ,
            "SIEVE_AUTH": "true",
            "SIEVE_ADMIN_KEY": self.admin_key,
            "SIEVE_LOG_FORMAT": "text",
            "SIEVE_LOG_LEVEL": "INFO",  # the access lines carry the status of every request
            "SIEVE_LLM": "extractive",
            "HF_HUB_OFFLINE": "1",
        }
        sieve = str(Path(sys.executable).with_name("sieve"))
        cmd = [sieve, "serve", "--host", HOST, "--port", str(port), "--data-dir", str(self.data)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return wait_healthy(self.proc, self.url)

    def stop(self, graceful: bool = True) -> dict[str, Any]:
        if self.proc is None:
            return {}
        proc, self.proc = self.proc, None
        try:
            if graceful:
                return stop_server(proc)
            proc.kill()
            return {"exit_code": proc.wait(30), "killed": True}
        finally:  # even when a second Ctrl-C cuts the graceful stop short
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # with whatever it left in its session

    def restart(self) -> float:
        self.stop(graceful=False)
        self.restarts += 1
        return self.start()

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the admin API (409 "exists" is fine: a restart keeps the data dir)."""
        headers = {"authorization": f"Bearer {self.admin_key}"}
        for _ in range(10):  # bounded retries past the admin key's own rate limit
            r = httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)
            if r.status_code != 429:
                break
            time.sleep(float(r.headers.get("retry-after", "1")))
        if r.status_code not in (201, 409):
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:300]}")
        result: dict[str, Any] = r.json()
        return result

    def key(self, role: str) -> str:
        body = {"collections": [COLLECTION], "role": role, "name": f"abuse-{role}"}
        return str(self.admin("/admin/keys", body)["key"])

    def keys(self, writers: int = 1) -> Keys:
        return Keys(self.key("read"), [self.key("write") for _ in range(writers)])

    def setup(self) -> None:
        """The collection, three small documents and one of ~60 chunks (a full embedding
        batch), then two questions: lazy state is loaded before any RSS baseline."""
        self.admin("/admin/collections", {"name": COLLECTION})
        rng = random.Random(0)
        docs = [document(f"SEED{i}QX", rng) for i in range(3)]
        docs.append({"title": "Warm-up", "text": prose(0.06, 0)})
        with httpx.Client(base_url=self.url, timeout=120) as c:
            auth = {"authorization": f"Bearer {self.key('write')}"}
            for doc in docs:
                r = c.post("/documents", json=doc, headers=auth)
                if r.status_code != 201:
                    raise RuntimeError(f"seed upload answered {r.status_code}: {r.text[:300]}")
            auth = {"authorization": f"Bearer {self.key('read')}"}
            for question in ("What was rebuilt by the guild?", "Which registry code is SEED1QX?"):
                c.post("/ask", json={"question": question}, headers=auth).raise_for_status()


# ---- measuring: RSS of the process tree, probes, CPU, the log ---------------------------------


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (parse children included), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 10_000:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def tree_rss_mb(pid: int) -> float:
    return round(sum(rss_mb(p) or 0.0 for p in process_tree(pid)), 1)


def tree_cpu_s(pid: int) -> float:
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            rest = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


class Monitor:
    """Samples the server tree's RSS and probes GET paths, each on its own thread, until exit."""

    def __init__(self, pid: int, url: str, probes: dict[str, str]) -> None:
        self.pid, self.url, self.probes = pid, url, probes  # probes: path -> bearer key or ""
        self.done = threading.Event()
        self.rss: list[float] = []
        self.ms: dict[str, list[float]] = {p: [] for p in probes}
        self.failed: Counter[str] = Counter()
        self.threads = [threading.Thread(target=self._sample, daemon=True)]
        for path, key in probes.items():
            self.threads.append(threading.Thread(target=self._probe, args=(path, key), daemon=True))

    def __enter__(self) -> Monitor:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for t in self.threads:
            t.join(PROBE_TIMEOUT_S + 2)

    def _sample(self) -> None:
        for _ in range(1_000_000):  # bounded; ends with the attack
            self.rss.append(tree_rss_mb(self.pid))
            if self.done.wait(SAMPLE_EVERY_S):
                return

    def _probe(self, path: str, key: str) -> None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(base_url=self.url, timeout=PROBE_TIMEOUT_S, headers=headers) as c:
            for _ in range(1_000_000):  # bounded; ends with the attack
                t0 = time.perf_counter()
                try:
                    ok = c.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.ms[path].append(round((time.perf_counter() - t0) * 1000, 1))
                self.failed[path] += not ok
                if self.done.wait(PROBE_EVERY_S):
                    return


def settle(server: Server, max_s: float) -> float | None:
    """Seconds until the server answers /healthz and is idle again; None if not within max_s."""
    t0 = time.perf_counter()
    for _ in range(int(max_s) + 2):
        if server.proc is None or server.proc.poll() is not None:
            return None
        cpu = tree_cpu_s(server.pid)
        time.sleep(1.0)
        try:
            healthy = httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and tree_cpu_s(server.pid) - cpu < IDLE_CPU_S:
            return round(time.perf_counter() - t0, 1)
        if time.perf_counter() - t0 > max_s:
            break
    return None


ACCESS_LINE = re.compile(r"\]: [A-Z]+ \S* (\d{3}) [\d.]+ ms")


def log_window(log: Path, offset: int) -> dict[str, Any]:
    """Tracebacks and 5xx access lines (503 aside: load shedding) the server logged after offset."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    bad = [
        line
        for line in lines
        if "Traceback" in line
        or ((m := ACCESS_LINE.search(line)) is not None and m[1] >= "500" and m[1] != "503")
    ]
    return {
        "tracebacks": sum("Traceback" in line for line in lines),
        "status_5xx_lines": sum("Traceback" not in line for line in bad),
        "first": [line[:300] for line in bad[:3]],
    }
