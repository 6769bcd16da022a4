"""Denial-of-service attacks replayed against a live Sieve server with API keys on.

    python -m bench.abuse                          # all 10 attacks, deadline 300 s
    python -m bench.abuse --quick                  # smoke run: smaller payloads, ~1-2 min
    python -m bench.abuse --only 3,4 --deadline-s 200 --pdf-text-kb 2000

The server runs as its own process (``sieve serve`` on a free 127.0.0.1 port, a fresh temporary
data dir, SIEVE_AUTH=true with a random admin key, text logs at INFO captured to a file). Through
the admin API the bench creates a collection and, per attack, fresh READ and WRITE keys for it
(so no attack inherits another's rate-limit bucket); it ingests four documents and asks two
questions first, so lazy state is loaded before the first RSS baseline. Every payload is built
in memory (a 40-page PDF whose pages share one deflated content stream, a docx of many tiny
paragraphs, huge markdown lists, 100,000-deep JSON, slowloris sockets...).

During each attack one thread samples the RSS of the server's process tree every 50 ms and
another GETs /healthz every 100 ms (attack 6 also probes GET /documents). Per attack it reports
the HTTP statuses, the wall time of the attack requests, peak RSS over idle, the worst probe, new
"Traceback" and 5xx lines of the server log, and pass/fail against the targets: no 5xx (503,
like 429, is an allowed answer to the /ask burst: load shedding), peak RSS < +300 MB, /healthz
< 500 ms, every read-key upload refused with 403 within 1 s, plus each attack's own expectations
(e.g. an over-limit upload gets a 4xx within --bounded-s). After an attack the server must
answer /healthz and go idle within --settle-s, else it is killed and restarted on the same data
dir (reported), so one attack does not spoil the next.

Only loopback traffic; every loop has a cap and the run a deadline (attacks that no longer fit
are skipped). Exits 0 whatever the server does; non-zero only if the harness itself breaks.
Writes bench/results/abuse.json and abuse.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.abuse_payloads import docx_bomb, files, multipart_body, nested_md, pdf_bomb, prose
from bench.abuse_report import HEALTHZ_TARGET_MS, RSS_TARGET_MB, plot, table
from bench.abuse_server import HOST, Monitor, Server, log_window, settle, tree_rss_mb
from bench.abuse_sockets import open_slow, trickle_all
from bench.common import RESULTS, machine, percentiles, write_json
from bench.crash import document

REFUSE_WITHIN_S = 1.0  # a read-key upload must be refused this fast
FAST_S = 5.0  # a 4xx for a malformed request (deep JSON, over-limit /ask)
UPLOAD_WAIT_S = 120.0  # the server's upload_wait_s: a waiting upload answers 202 after it
MIN_ATTACK_S = 10.0  # an attack is skipped when less than this is left before the deadline
JSON = {"content-type": "application/json"}


@dataclass
class Sizes:
    """Payload sizes and request counts (each also a --flag)."""

    md_lines: int = 5_000_000  # attacks 1-2: "- item" lines
    parallel_uploads: int = 3  # attack 2
    pdf_pages: int = 40  # attack 3: pages sharing one content stream...
    pdf_text_kb: int = 4000  # ...of this much (uncompressed) text operators
    docx_paragraphs: int = 800_000  # attack 4
    flood_mb: float = 20.0  # attack 5: "a\n" lines
    nested_lines: int = 250_000  # attack 5: markdown list lines, indented by...
    nested_depth: int = 150  # ...2 * (i % nested_depth) spaces (kept under max_upload_mb)
    big_upload_mb: float = 2.0  # attack 6
    small_uploads: int = 50  # attack 6
    ask_burst: int = 40  # attack 7
    json_depth: int = 100_000  # attack 8
    slow_headers: int = 20  # attack 9
    slow_bodies: int = 5  # attack 9
    slow_cap_s: float = 45.0  # attack 9
    slow_every_s: float = 1.0  # attack 9: one byte per socket this often
    disconnects: int = 4  # attack 10


QUICK = Sizes(
    md_lines=500_000,
    pdf_text_kb=300,
    docx_paragraphs=250_000,
    flood_mb=2.0,
    nested_lines=210_000,
    nested_depth=20,
    big_upload_mb=0.2,
    small_uploads=10,
    ask_burst=10,
    slow_headers=5,
    slow_bodies=2,
    slow_cap_s=18.0,
    disconnects=2,
)


# ---- requests and their expectations ---------------------------------------------------------


@dataclass
class Result:
    """One attack request (or socket). expect: an exact status ("403"), "4xx", "2xx", "any"
    (anything but a 5xx, no answer included) or "closed" (the server ended a slow socket)."""

    label: str
    status: str  # the HTTP status, or what happened instead (ReadTimeout, closed, open...)
    seconds: float
    expect: str
    within_s: float | None = None
    busy_ok: bool = False  # 429/503 are acceptable answers (rate limit, load shedding)

    @property
    def code(self) -> int | None:
        return int(self.status) if self.status.isdigit() else None

    @property
    def server_error(self) -> bool:
        shed = self.busy_ok and self.code == 503
        return self.code is not None and self.code >= 500 and not shed

    def problem(self) -> str | None:
        """Why this result misses its expectation, or None."""
        code, got = self.code, f"{self.label}: got {self.status} in {self.seconds:.2f} s"
        if self.server_error:
            return f"{got} (5xx)"
        busy = self.busy_ok and code in (429, 503)
        met = {
            "4xx": code is not None and 400 <= code < 500,
            "2xx": code is not None and (200 <= code < 300 or busy),
            "any": True,
            "closed": self.status != "open",
        }.get(self.expect, self.status == self.expect)
        late = self.within_s is not None and self.seconds > self.within_s
        if not met or late:
            within = f" within {self.within_s} s" if self.within_s is not None else ""
            return f"{got}, expected {self.expect}{within}"
        return None


def call(c: httpx.Client, label: str, expect: str, within_s: float | None, method: str, path: str,
         **kw: Any) -> Result:  # fmt: skip
    t0 = time.perf_counter()
    try:
        status = str(c.request(method, path, **kw).status_code)
    except httpx.HTTPError as exc:  # a timeout or a reset: no answer
        status = type(exc).__name__
    return Result(label, status, round(time.perf_counter() - t0, 3), expect, within_s)


def parallel(calls: Sequence[Callable[[], Result]]) -> list[Result]:
    """Run calls at once; on Ctrl-C do not wait for them (the server is killed, they end)."""
    pool = ThreadPoolExecutor(max(1, len(calls)))
    try:
        return [f.result() for f in [pool.submit(c) for c in calls]]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# ---- the attacks -----------------------------------------------------------------------------


@dataclass
class Ctx:
    server: Server
    sizes: Sizes
    bounded_s: float  # an over-limit upload must get its 4xx within this
    deadline: float  # perf_counter() of the whole run's end
    notes: dict[str, Any] = field(default_factory=dict)  # payload sizes, for the report

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def client(self, key: str, timeout_s: float | None = None) -> httpx.Client:
        timeout = max(2.0, min(timeout_s or self.bounded_s + 5, self.remaining()))
        auth = {"authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.server.url, timeout=timeout, headers=auth)

    def upload(self, key: str, label: str, expect: str, within_s: float | None,
               timeout_s: float | None = None, **kw: Any) -> Result:  # fmt: skip
        with self.client(key, timeout_s) as c:
            return call(c, label, expect, within_s, "POST", "/documents", **kw)


def md_json(ctx: Ctx) -> list[Result]:
    keys = ctx.server.keys()
    doc = {"title": "list", "text": "- item\n" * ctx.sizes.md_lines, "format": "md"}
    body = json.dumps(doc).encode()
    ctx.notes["json_bytes"] = len(body)
    label, within = "read: JSON md", REFUSE_WITHIN_S
    return [ctx.upload(keys.read, label, "403", within, content=body, headers=JSON)]


def md_multipart(ctx: Ctx) -> list[Result]:
    keys = ctx.server.keys()
    form = files("list.md", b"- item\n" * ctx.sizes.md_lines, "text/markdown")

    def one(label: str) -> Result:
        return ctx.upload(keys.read, label, "403", REFUSE_WITHIN_S, **form)

    burst = [partial(one, f"read: md parallel {i}") for i in range(ctx.sizes.parallel_uploads)]
    return [one("read: multipart md"), *parallel(burst)]


def pdf(ctx: Ctx) -> list[Result]:
    keys = ctx.server.keys()
    data = pdf_bomb(ctx.sizes.pdf_pages, ctx.sizes.pdf_text_kb)
    ctx.notes["pdf_bytes"] = len(data)
    form = files("bomb.pdf", data, "application/pdf")
    return [
        ctx.upload(keys.read, "read: PDF bomb", "403", REFUSE_WITHIN_S, **form),
        ctx.upload(keys.write[0], "write: PDF bomb", "4xx", ctx.bounded_s, **form),
    ]


def docx(ctx: Ctx) -> list[Result]:
    keys = ctx.server.keys()
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    data = docx_bomb(ctx.sizes.docx_paragraphs)
    ctx.notes["docx_bytes"] = len(data)
    form = files("bomb.docx", data, mime)
    return [
        ctx.upload(keys.read, "read: docx bomb", "403", REFUSE_WITHIN_S, **form),
        ctx.upload(keys.write[0], "write: docx bomb", "4xx", ctx.bounded_s, **form),
    ]


def floods(ctx: Ctx) -> list[Result]:
    key, s = ctx.server.keys().write[0], ctx.sizes
    flood = files("flood.txt", b"a\n" * int(s.flood_mb * 500_000), "text/plain")
    data = nested_md(s.nested_lines, s.nested_depth)
    ctx.notes["nested_md_bytes"] = len(data)
    nested = files("nested.md", data, "text/markdown")
    return [
        ctx.upload(key, "write: a\\n flood", "4xx", ctx.bounded_s, **flood),
        ctx.upload(key, "write: nested md list", "4xx", ctx.bounded_s, **nested),
    ]


def starvation(ctx: Ctx) -> list[Result]:
    """One big upload, then many small ones behind it (the probes watch GET /documents). The
    uploads wait (wait=true) up to the server's upload_wait_s, then get 202: the client waits
    that long too. They are spread over several write keys, past one key's rate limit."""
    keys = ctx.server.keys(writers=1 + ctx.sizes.small_uploads // 30)
    big = {"title": "big", "text": prose(ctx.sizes.big_upload_mb, 1)}
    upload = partial(ctx.upload, expect="any", within_s=None, timeout_s=UPLOAD_WAIT_S + 15)
    calls = [partial(upload, keys.write[0], "write: big upload", json=big)]
    for i in range(ctx.sizes.small_uploads):
        doc = document(f"SMALL{i}QX", random.Random(i))
        calls.append(partial(upload, keys.write[i % len(keys.write)], "write: small", json=doc))
    first = ThreadPoolExecutor(1)
    try:
        head = first.submit(calls[0])
        time.sleep(0.3)  # the big one goes first
        rest = parallel(calls[1:])
        return [head.result(), *rest]
    finally:
        first.shutdown(wait=False, cancel_futures=True)


def asks(ctx: Ctx) -> list[Result]:
    read = ctx.server.keys().read
    body = {"question": "x", "candidates": 1000, "top_k": 100}
    with ctx.client(read) as c:
        out = [call(c, "read: ask over limits", "422", FAST_S, "POST", "/ask", json=body)]
    burst_key = ctx.server.keys().read  # a full rate-limit bucket for the burst

    def ask(i: int) -> Result:
        with ctx.client(burst_key) as c:
            q = {"question": f"What was rebuilt by the guild near the bridge? ({i})"}
            r = call(c, "read: ask burst", "2xx", None, "POST", "/ask", json=q)
            return replace(r, busy_ok=True)

    return out + parallel([partial(ask, i) for i in range(ctx.sizes.ask_burst)])


DEEP_PATHS = ["/api/chat", "/api/generate", "/api/show", "/v1/chat/completions", "/ask"]
DEEP_PATHS += ["/documents"]


def deep_json(ctx: Ctx) -> list[Result]:
    d = ctx.sizes.json_depth
    bodies = {"[[[...]]]": "[" * d + "]" * d, '{"a":{"a":...}}': '{"a":' * d + "1" + "}" * d}
    out = []
    with ctx.client(ctx.server.keys().read, timeout_s=30) as c:
        for path in DEEP_PATHS:
            for name, body in bodies.items():
                label = f"read: {name} to {path}"
                out.append(call(c, label, "4xx", FAST_S, "POST", path, content=body, headers=JSON))
    return out


def slowloris(ctx: Ctx, header_timeout_s: float, body_timeout_s: float) -> list[Result]:
    """Request lines + headers one byte at a time; upload bodies that trickle one byte at a
    time (alternately: that stall after 64 bytes). Each must be ended within the server's
    timeout + 5 s: a trickle too, as holding an upload open past body_timeout_s is the attack."""
    s, port = ctx.sizes, int(ctx.server.url.rsplit(":", 1)[1])
    key = ctx.server.keys().write[0]
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode() + b"a" * 100_000
    head = (
        f"POST /documents HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    body = b'{"title": "slow", "text": "' + b"a" * 1_000_000
    h, b = header_timeout_s + 5, body_timeout_s + 5
    slows = [open_slow(port, "slow headers", b"", request, h) for _ in range(s.slow_headers)]
    for i in range(s.slow_bodies):
        stalled = i % 2 == 1
        first, rest = (body[:64], b"") if stalled else (b"", body)
        label = "stalled body" if stalled else "trickled body"
        slows.append(open_slow(port, label, head + first, rest, b))
    cap = max(1.0, min(s.slow_cap_s, ctx.remaining() - 5))
    trickle_all(slows, cap, s.slow_every_s)
    out = []
    for sl in slows:
        checked = cap >= sl.limit_s  # a cap below the server's timeout cannot tell
        open_s = round((sl.ended or time.perf_counter()) - sl.started, 2)
        label = sl.label + ("" if checked else f" (unchecked: cap {cap:.0f} s)")
        out.append(Result(label, sl.outcome, open_s, "closed" if checked else "any", sl.limit_s))
    return out


def half_upload(port: int, key: str, kind: str, reset: bool) -> Result:
    """Headers + half the body, then close (reset: RST instead of FIN)."""
    data = b"- item\n" * 300_000
    if kind == "json":
        ctype = "application/json"
        body = json.dumps({"title": "cut", "text": data.decode()}).encode()
    else:
        ctype, body = multipart_body(data)
    head = (
        f"POST /documents HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    t0 = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    label = f"cut {kind} upload ({'RST' if reset else 'FIN'})"
    return Result(label, "client-closed", round(time.perf_counter() - t0, 3), "any")


def disconnects(ctx: Ctx) -> list[Result]:
    keys, port = ctx.server.keys(), int(ctx.server.url.rsplit(":", 1)[1])
    variants = [("multipart", False), ("multipart", True), ("json", False), ("json", True)]
    out = [
        half_upload(port, keys.write[0], *variants[i % len(variants)])
        for i in range(ctx.sizes.disconnects)
    ]
    out.append(half_upload(port, keys.read, "multipart", False))
    time.sleep(1.0)  # let the server notice and log
    doc = document("AFTERCUTQX", random.Random(7))
    return [*out, ctx.upload(keys.write[0], "write: upload after the cuts", "2xx", 60.0, json=doc)]


@dataclass
class Attack:
    name: str
    run: Callable[[Ctx], list[Result]]
    probe_documents: bool = False


def attacks(args: argparse.Namespace) -> list[Attack]:
    slow = partial(slowloris, header_timeout_s=args.header_timeout_s)
    slow = partial(slow, body_timeout_s=args.body_timeout_s)
    return [
        Attack("1 read JSON md list", md_json),
        Attack("2 read multipart md (+parallel)", md_multipart),
        Attack("3 PDF shared stream", pdf),
        Attack("4 docx many paragraphs", docx),
        Attack("5 write a\\n flood + nested md", floods),
        Attack("6 thread-pool starvation", starvation, probe_documents=True),
        Attack("7 /ask over limits + burst", asks),
        Attack("8 deep JSON", deep_json),
        Attack("9 slowloris", slow),
        Attack("10 disconnect mid-upload", disconnects),
    ]


# ---- running an attack and judging it --------------------------------------------------------


def run_attack(ctx: Ctx, attack: Attack, settle_s: float) -> dict[str, Any]:
    """One attack under the monitor, then the wait for the server to settle (still monitored:
    work it keeps doing after the client gave up counts); restart it if it does not."""
    server = ctx.server
    if ctx.remaining() < MIN_ATTACK_S:
        return {"name": attack.name, "skipped": "deadline"}
    print(f"attack {attack.name} ...", flush=True)
    idle, offset = tree_rss_mb(server.pid), server.log.stat().st_size
    probes = {"/healthz": ""}
    if attack.probe_documents:
        probes["/documents?limit=10"] = server.keys().read
    t0 = time.perf_counter()
    with Monitor(server.pid, server.url, probes) as mon:
        results = attack.run(ctx)
        wall = time.perf_counter() - t0
        settled = settle(server, max(1.0, min(settle_s, ctx.remaining())))
    row = judge(attack.name, results, mon, idle)
    row["payload"], ctx.notes = ctx.notes, {}
    exit_code = server.proc.poll() if server.proc else None
    row.update(wall_s=round(wall, 2), settled_s=settled, server_exit_code=exit_code)
    row["log"] = log_window(server.log, offset)
    row["targets"]["no_5xx"] = row["targets"]["no_5xx"] and row["log"]["status_5xx_lines"] == 0
    row["targets"]["log_no_traceback"] = row["log"]["tracebacks"] == 0
    row["passed"] = all(v for v in row["targets"].values() if v is not None)
    if settled is None and ctx.remaining() > MIN_ATTACK_S:
        row["restarted_after"] = f"not idle within {settle_s:.0f} s: restarted in "
        row["restarted_after"] += f"{server.restart():.1f} s"
    return row


def attempt(ctx: Ctx, attack: Attack, settle_s: float) -> dict[str, Any]:
    """run_attack, or a row saying why it could not run (the server is restarted if down)."""
    try:
        return run_attack(ctx, attack, settle_s)
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        proc = ctx.server.proc
        if proc is None or proc.poll() is not None:
            ctx.server.restart()
        return {"name": attack.name, "skipped": f"harness error: {exc!r}"[:300]}


def judge(name: str, results: list[Result], mon: Monitor, idle: float) -> dict[str, Any]:
    seconds = [r.seconds for r in results]
    peak = max(mon.rss, default=idle)
    probes = {
        path: {
            "n": len(ms),
            "worst_ms": max(ms, default=None),
            "p50_ms": percentiles(ms).get("p50"),
            "failed": mon.failed[path],
        }
        for path, ms in mon.ms.items()
    }
    problems = [p for r in results if (p := r.problem())]
    reads = [r for r in results if r.expect == "403"]
    targets: dict[str, bool | None] = {
        "no_5xx": not any(r.server_error for r in results),
        "rss_under_300mb": peak - idle < RSS_TARGET_MB,
        "read_uploads_403_1s": all(r.problem() is None for r in reads) if reads else None,
        "expectations": not problems,
    }
    for path, probe in probes.items():
        fast = probe["worst_ms"] is not None and probe["worst_ms"] < HEALTHZ_TARGET_MS
        targets[f"{path.split('?')[0].strip('/')}_under_500ms"] = fast and probe["failed"] == 0
    return {
        "name": name,
        "statuses": dict(Counter(r.status for r in results)),
        "request_s": {"max": max(seconds, default=None), "p50": percentiles(seconds).get("p50")},
        "rss_mb": {"idle": idle, "peak": peak, "delta": round(peak - idle, 1)},
        "probes": probes,
        "targets": targets,
        "problems": problems,
        "requests": [asdict(r) for r in results],
    }


# ---- the report ------------------------------------------------------------------------------


def run(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    deadline = time.perf_counter() + args.deadline_s
    chosen = [a for a in attacks(args) if not args.only or a.name.split()[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="sieve-abuse-") as tmp:
        server = Server(Path(tmp))
        try:
            startup_s = server.start()
            server.setup()
            ctx = Ctx(server, sizes, args.bounded_s, deadline)
            idle_start = tree_rss_mb(server.pid)
            rows = [attempt(ctx, a, args.settle_s) for a in chosen]
            idle_end = tree_rss_mb(server.pid) if server.proc else None
        finally:
            stopped = server.stop()
            if args.keep_log:
                Path(args.keep_log).write_bytes(server.log.read_bytes())
    return {
        "command": " ".join(["python", "-m", "bench.abuse", *sys.argv[1:]]),
        "server": "sieve serve, SIEVE_AUTH=true, fresh data dir, text logs at INFO, loopback",
        "sizes": asdict(sizes),
        "deadline_s": args.deadline_s,
        "bounded_s": args.bounded_s,
        "settle_s": args.settle_s,
        "startup_s": round(startup_s, 1),
        "restarts": server.restarts,
        "idle_rss_mb": {"before_attacks": idle_start, "after_attacks": idle_end},
        "wall_s": round(args.deadline_s - (deadline - time.perf_counter()), 1),
        "attacks": rows,
        "passed": sum(r.get("passed", False) for r in rows),
        "server_stop": stopped,
        "machine": machine(),
    }


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller payloads and counts")
    p.add_argument("--deadline-s", type=float, help="whole run (default 300, quick 180)")
    p.add_argument("--settle-s", type=float, help="wait for idle after an attack (30, quick 15)")
    p.add_argument("--bounded-s", type=float, help="over-limit uploads: 4xx within (70, quick 30)")
    p.add_argument("--header-timeout-s", type=float, default=10.0, help="the server's setting")
    p.add_argument("--body-timeout-s", type=float, default=30.0, help="the server's setting")
    p.add_argument("--only", default="", help="attack numbers, comma-separated (e.g. 3,9)")
    p.add_argument("--keep-log", help="copy the server's log here")
    for f in fields(Sizes):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), help="size/count")
    args = p.parse_args(argv)
    defaults = (180.0, 15.0, 30.0) if args.quick else (300.0, 30.0, 70.0)
    for name, value in zip(("deadline_s", "settle_s", "bounded_s"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.only = {n.strip() for n in args.only.split(",") if n.strip()}
    given = {f.name: getattr(args, f.name) for f in fields(Sizes)}
    base = QUICK if args.quick else Sizes()
    return args, replace(base, **{k: v for k, v in given.items() if v is not None})


class Stopped(BaseException):
    """SIGTERM or the watchdog's SIGALRM: like Ctrl-C, no handler of an attack catches it, and
    the finally blocks still kill the server."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` (and SIGTERM) raise Stopped."""

    def stop(signum: int, _: object) -> None:
        raise Stopped(f"harness stopped by signal {signum} (watchdog: {seconds:.0f} s)")

    old = signal.signal(signal.SIGALRM, stop), signal.signal(signal.SIGTERM, stop)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old[0])
        signal.signal(signal.SIGTERM, old[1])


def main(argv: list[str] | None = None) -> int:
    args, sizes = parse_args(argv)
    with watchdog(args.deadline_s + 300):  # the deadline, a last attack's timeouts, the stop
        result = run(args, sizes)
    path = write_json("abuse", result)
    plot(result["attacks"], RESULTS / "abuse.png")
    print(table(result["attacks"]))
    for row in result["attacks"]:
        for problem in row.get("problems", [])[:5]:
            print(f"  [{row['name'].split()[0]}] {problem}")
    ran = sum("skipped" not in r for r in result["attacks"])
    idle = result["idle_rss_mb"]
    print(f"{result['passed']}/{ran} attacks passed; restarts: {result['restarts']}; idle RSS "
          f"{idle['before_attacks']} -> {idle['after_attacks']} MB; wall {result['wall_s']} s; "
          f"wrote {path} and abuse.png")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
