"""What each way into Sieve costs over real HTTP, and how soon a stream shows something.

    python -m bench.endpoints                      # extractive answers, 100 questions (~8 min)
    python -m bench.endpoints --llm llamacpp       # Gemma 3 270M, llama.cpp, 40 questions (~5 min)

The paragraphs of ``--articles`` SQuAD v1.1 dev articles (the pruner's dev-split articles first,
then others as distractors; default 10: 536 paragraphs) are ingested as documents into a fresh
temporary data dir; then the real app runs under uvicorn on loopback (in a thread of this
process) and one httpx client asks questions of the pruner's dev-split articles, one request at
a time, after 5 warm-up requests. Per question, in an order rotated from one question to the
next: ``/ask`` (JSON), ``/ask`` streamed (SSE: time to the ``retrieval``, ``context``, first
``token`` and ``done`` events, stamped as each line arrives), ``/v1/chat/completions`` (JSON, and
SSE: first content chunk, ``[DONE]``) and ``/api/chat`` (NDJSON: first line, ``done`` line).
Each chat text, its "Sources:" footer cut, must equal the ``/ask`` answer: mismatches are counted.

Follow-ups: pairs of questions on one paragraph whose second question names something the first
one did; that name becomes "it" in the second (``Who founded X?`` → ``When did it close?``). The
conversation [q1, answer 1, q2 with "it"] goes to ``/v1/chat/completions``; recorded: how the
server rewrote it (``sieve.rewritten``), whether q2's gold paragraph is among the cited passages
and a gold answer string in their kept text; compared with the "it" question alone and with the
original q2 alone. Writes bench/results/endpoints.json (endpoints_llamacpp.json) and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.main import create_app
from app.services import Services
from app.settings import Settings
from bench.common import RESULTS, machine, percentiles, write_json
from bench.squad import ingest, load_squad
from graph import extract
from pruner.data import split_of
from tests.app.live_server import live_server

Question = tuple[str, int, list[str]]  # text, gold paragraph index, answer strings
Timings = dict[str, float]
FOOTER = "\n\nSources:\n"
WARM_UP = 5
# (endpoint, phase) → label in the table and the chart, in display order
PHASES = {
    ("ask", "total"): "/ask JSON",
    ("ask_sse", "retrieval"): "/ask SSE: retrieval event",
    ("ask_sse", "context"): "/ask SSE: context event",
    ("ask_sse", "first_token"): "/ask SSE: first token",
    ("ask_sse", "done"): "/ask SSE: done",
    ("chat", "total"): "/v1 chat JSON",
    ("chat_sse", "first_content"): "/v1 chat SSE: first content",
    ("chat_sse", "done"): "/v1 chat SSE: [DONE]",
    ("ollama", "first_line"): "/api/chat NDJSON: first line",
    ("ollama", "done"): "/api/chat NDJSON: done line",
    ("follow_up", "total"): "/v1 chat JSON, 3-turn follow-up",
    ("follow_up_alone", "total"): '/v1 chat JSON, "it" question alone',
}


def article_of(title: str) -> str:
    """``"Super Bowl 50 (3)"`` → ``"Super Bowl 50"`` (load_squad's paragraph titles)."""
    return title.rsplit(" (", 1)[0]


def corpus(
    paragraphs: list[tuple[str, str]], questions: list[Question], articles: int
) -> tuple[list[tuple[str, str]], list[Question], list[str]]:
    """The paragraphs of the first ``articles`` articles (dev-split ones first) and the
    dev-split questions on them, gold indices renumbered."""
    order = list(dict.fromkeys(article_of(t) for t, _ in paragraphs))
    dev = [a for a in order if split_of("squad_v1", a.replace(" ", "_")) == "dev"]
    chosen = (dev + [a for a in order if a not in dev])[:articles]
    keep = [i for i, (t, _) in enumerate(paragraphs) if article_of(t) in chosen]
    renumber = {old: new for new, old in enumerate(keep)}
    asked = [(q, renumber[g], a) for q, g, a in questions if g in renumber]
    return [paragraphs[i] for i in keep], asked, chosen


def with_pronoun(q1: str, q2: str) -> str | None:
    """``q2`` with the first name it shares with ``q1`` replaced by "it" (None: none shared)."""
    names = ("name", "acronym")
    known = {m.key for m in extract([q1]) if m.kind in names and not m.weak}
    for m in extract([q2]):
        if m.kind not in names or m.weak or m.key not in known:
            continue
        # whole words only, and not the head of a longer name ("Apollo" of "Apollo 13")
        name = re.escape(m.text.removesuffix("'s"))
        found = re.search(r"\b(?:[Tt]he\s+)?" + name + r"\b('s?)?(?!\s+(?:\d|[A-Z]))", q2)
        if found is None:
            continue
        word = "its" if found.group(1) else "it"
        if found.start() == 0:
            word = word.capitalize()
        return q2[: found.start()] + word + q2[found.end() :]
    return None


@dataclass(frozen=True)
class FollowUp:
    first: int  # question indices
    second: int
    question: str  # the second question with "it"


def draw(
    questions: list[Question], n: int, pairs: int, rng: random.Random
) -> tuple[list[int], list[FollowUp], list[int]]:
    """The measured questions (the follow-up pairs' included), the pairs, warm-up questions."""
    by_paragraph: dict[int, list[int]] = defaultdict(list)
    for i, (_, gold, _) in enumerate(questions):
        by_paragraph[gold].append(i)
    candidates: list[FollowUp] = []
    for ids in by_paragraph.values():
        shuffled = rng.sample(ids, len(ids))
        for a in shuffled:
            found = next(
                (
                    FollowUp(a, b, q)
                    for b in shuffled
                    if b != a and (q := with_pronoun(questions[a][0], questions[b][0]))
                ),
                None,
            )
            if found:
                candidates.append(found)
                break
    chosen = rng.sample(candidates, min(pairs, n // 2, len(candidates)))
    sample = [i for f in chosen for i in (f.first, f.second)]
    taken = set(sample)
    rest = [i for i in range(len(questions)) if i not in taken]
    rng.shuffle(rest)
    fill = max(0, n - len(sample))
    sample += rest[:fill]
    rng.shuffle(sample)
    return sample, chosen, rest[fill : fill + WARM_UP]


@dataclass
class Reply:
    """One request: client-side times (ms from sending) and what came back."""

    times: Timings
    text: str
    body: dict[str, Any] = field(default_factory=dict)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _events(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """(event name, raw data) per SSE ``data:`` line, as the lines arrive."""
    name = None
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            yield name, line[5:].strip()
        elif not line:
            name = None


def ask_json(client: httpx.Client, question: str) -> Reply:
    t0 = time.perf_counter()
    r = client.post("/ask", json={"question": question})
    times = {"total": _ms(t0)}
    r.raise_for_status()
    body = r.json()
    times["server_total"] = body["stats"]["timings_ms"]["total"]
    return Reply(times, body["answer"], body)


def ask_sse(client: httpx.Client, question: str) -> Reply:
    times: Timings = {}
    pieces: list[str] = []
    body: dict[str, Any] = {}
    t0 = time.perf_counter()
    with client.stream("POST", "/ask", json={"question": question, "stream": True}) as r:
        r.raise_for_status()
        for name, data in _events(r.iter_lines()):
            now = _ms(t0)
            if name == "token":
                times.setdefault("first_token", now)
                pieces.append(json.loads(data)["text"])
            elif name in ("retrieval", "context", "done"):
                times[name] = now
                if name == "done":
                    body = json.loads(data)
            elif name == "error":
                raise RuntimeError(f"/ask stream failed: {data}")
    return Reply(times, "".join(pieces), body)


def chat_json(client: httpx.Client, messages: list[dict[str, str]]) -> Reply:
    t0 = time.perf_counter()
    r = client.post("/v1/chat/completions", json={"model": "sieve", "messages": messages})
    times = {"total": _ms(t0)}
    r.raise_for_status()
    body = r.json()
    return Reply(times, body["choices"][0]["message"]["content"], body)


def chat_sse(client: httpx.Client, messages: list[dict[str, str]]) -> Reply:
    times: Timings = {}
    pieces: list[str] = []
    body: dict[str, Any] = {}
    request = {"model": "sieve", "messages": messages, "stream": True}
    t0 = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", json=request) as r:
        r.raise_for_status()
        for _, data in _events(r.iter_lines()):
            now = _ms(t0)
            if data == "[DONE]":
                times["done"] = now
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(f"chat stream failed: {chunk['error']}")
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                times.setdefault("first_content", now)
                pieces.append(content)
            if "sieve" in chunk:
                body = chunk
    return Reply(times, "".join(pieces), body)


def ollama_chat(client: httpx.Client, messages: list[dict[str, str]]) -> Reply:
    times: Timings = {}
    pieces: list[str] = []
    body: dict[str, Any] = {}
    t0 = time.perf_counter()
    with client.stream("POST", "/api/chat", json={"model": "sieve", "messages": messages}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.strip():
                continue
            now = _ms(t0)
            times.setdefault("first_line", now)
            item = json.loads(line)
            if "error" in item:
                raise RuntimeError(f"/api/chat failed: {item['error']}")
            pieces.append(item["message"]["content"])
            if item["done"]:
                times["done"], body = now, item
    return Reply(times, "".join(pieces), body)


def user(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def answer_of(chat_text: str) -> str:
    """The chat text without its sources footer."""
    return chat_text.split(FOOTER)[0].strip()


ENDPOINTS: dict[str, Callable[[httpx.Client, str], Reply]] = {
    "ask": ask_json,
    "ask_sse": ask_sse,
    "chat": lambda c, q: chat_json(c, user(q)),
    "chat_sse": lambda c, q: chat_sse(c, user(q)),
    "ollama": lambda c, q: ollama_chat(c, user(q)),
}


def passages(reply: Reply) -> list[tuple[str, str]]:
    """(title, kept text) of the cited passages: /ask bodies have them at the top level, chat
    bodies under ``sieve``."""
    body = reply.body.get("sieve", reply.body)
    return [(c["title"], c["text"]) for c in body.get("citations", [])]


def compare(
    replies: dict[str, Reply], question: str, tally: Counter[str], examples: list[dict[str, Any]]
) -> None:
    """Each endpoint's answer (and cited passages) against the /ask JSON one."""
    expected, context = replies["ask"].text.strip(), passages(replies["ask"])
    for name, reply in replies.items():
        if name == "ask":
            continue
        same_passages = passages(reply) == context
        tally[f"{name} passages"] += not same_passages
        got = reply.text.strip() if name == "ask_sse" else answer_of(reply.text)
        if got != expected:
            tally[f"{name} answer"] += 1
            if len(examples) < 8:
                examples.append(
                    {"endpoint": name, "question": question, "ask": expected, "got": got}
                    | {"same_passages": same_passages}
                )


def measure(
    client: httpx.Client, questions: list[Question], sample: list[int]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any], dict[int, Reply]]:
    """Every endpoint on every sampled question; times, answer mismatches, the chat replies."""
    times: dict[str, dict[str, list[float]]] = {e: defaultdict(list) for e in ENDPOINTS}
    tally: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    chat_replies: dict[int, Reply] = {}
    names = list(ENDPOINTS)
    for n, qi in enumerate(sample):
        question = questions[qi][0]
        order = names[n % len(names) :] + names[: n % len(names)]  # no endpoint always first
        replies = {name: ENDPOINTS[name](client, question) for name in order}
        for name, reply in replies.items():
            for phase, ms in reply.times.items():
                times[name][phase].append(ms)
        compare(replies, question, tally, examples)
        chat_replies[qi] = replies["chat"]
        if (n + 1) % 25 == 0:
            logging.warning("%d/%d questions", n + 1, len(sample))
    checks = {
        "compared_with": "the /ask JSON reply of the same question: its answer (chat texts "
        "without their Sources footer) and its cited passages (title, kept text)",
        "answer_mismatches": {name: tally[f"{name} answer"] for name in names[1:]},
        "passage_mismatches": {name: tally[f"{name} passages"] for name in names[1:]},
        "examples": examples,
    }
    return times, checks, chat_replies


def cited(reply: Reply, gold_title: str, answers: list[str]) -> tuple[bool, bool]:
    """(gold paragraph among the cited passages, an answer string in their kept text)."""
    found = passages(reply)
    return any(t == gold_title for t, _ in found), any(a in x for _, x in found for a in answers)


def follow_ups(
    client: httpx.Client,
    questions: list[Question],
    paragraphs: list[tuple[str, str]],
    pairs: list[FollowUp],
    chat_replies: dict[int, Reply],
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Each pair as a 3-turn conversation and its "it" question alone; the original q2 alone
    is the measured run's /v1 chat JSON reply."""
    rewritten: Counter[str] = Counter()
    hits: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    times: dict[str, list[float]] = defaultdict(list)
    examples: list[dict[str, str]] = []
    for f in pairs:
        q1, (q2, gold, answers) = questions[f.first][0], questions[f.second]
        messages = [
            *user(q1),
            {"role": "assistant", "content": chat_replies[f.first].text},
            *user(f.question),
        ]
        conversation = chat_json(client, messages)
        alone = chat_json(client, user(f.question))
        times["follow_up"].append(conversation.times["total"])
        times["follow_up_alone"].append(alone.times["total"])
        rewritten[conversation.body["sieve"]["rewritten"]] += 1
        title = paragraphs[gold][0]
        hits["conversation"].append(cited(conversation, title, answers))
        hits["it_alone"].append(cited(alone, title, answers))
        hits["original_alone"].append(cited(chat_replies[f.second], title, answers))
        if len(examples) < 5:
            examples.append(
                {
                    "q1": q1,
                    "q2": q2,
                    "asked": f.question,
                    "rewritten_to": conversation.body["sieve"]["question"],
                }
            )
    n = len(pairs)
    rates = {
        k: {
            "gold_paragraph_cited": round(sum(p for p, _ in v) / n, 3),
            "answer_in_cited_text": round(sum(a for _, a in v) / n, 3),
        }
        for k, v in hits.items()
    }
    return {"pairs": n, "rewritten": dict(rewritten), **rates, "examples": examples}, times


def summarize(times: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    latency = {e: {p: percentiles(v) for p, v in ph.items()} for e, ph in times.items()}
    base = latency["ask"]["total"]["p50"]
    ends = {
        "ask_sse": "done",
        "chat": "total",
        "chat_sse": "done",
        "ollama": "done",
    }
    overhead = {f"{e} {p}": round(latency[e][p]["p50"] / base, 3) for e, p in ends.items()}
    if "follow_up" in latency:
        alone = latency["follow_up_alone"]["total"]["p50"]
        overhead["follow_up vs it-question alone"] = round(
            latency["follow_up"]["total"]["p50"] / alone, 3
        )
    return {"latency_ms": latency, "p50_ratio_to_ask_json": overhead}


def table(latency: dict[str, dict[str, dict[str, float]]], counts: dict[str, int]) -> str:
    rows = [f"{'endpoint / phase':<38} {'n':>4} {'p50':>9} {'p95':>9} {'p99':>9}  (ms)"]
    for (e, p), label in PHASES.items():
        if p in latency.get(e, {}):
            s = latency[e][p]
            rows.append(
                f"{label:<38} {counts[e]:>4} {s['p50']:>9.1f} {s['p95']:>9.1f} {s['p99']:>9.1f}"
            )
    return "\n".join(rows)


def plot(result: dict[str, Any], path: Path) -> None:
    latency = result["latency_ms"]
    title = (
        f"Sieve over loopback HTTP: {result['llm']} answers, {result['pruner']} pruner "
        f"({result['questions']} SQuAD questions)"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, latency[e][p]) for (e, p), label in PHASES.items() if p in latency.get(e, {})]
    rows.reverse()  # barh draws bottom-up: keep the table's order top-down
    y = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.4))
    ax.barh([i + 0.2 for i in y], [s["p50"] for _, s in rows], 0.4, label="p50")
    ax.barh([i - 0.2 for i in y], [s["p95"] for _, s in rows], 0.4, label="p95", alpha=0.6)
    for i, (_, s) in enumerate(rows):
        ax.text(s["p95"], i - 0.2, f" {s['p95']:.0f}", va="center", fontsize=7)
        ax.text(s["p50"], i + 0.2, f" {s['p50']:.0f}", va="center", fontsize=7)
    ax.set_yticks(y, [label for label, _ in rows], fontsize=8)
    ax.set_xlabel("ms from sending the request (client side, loopback HTTP)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(s["p95"] for _, s in rows) * 1.1)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def warm_up(client: httpx.Client, questions: list[Question], ids: list[int]) -> list[float]:
    """One request per endpoint (the first one loads a lazy LLM): their latencies in ms."""
    out = []
    for name, qi in zip(ENDPOINTS, ids, strict=False):
        t0 = time.perf_counter()
        ENDPOINTS[name](client, questions[qi][0])
        out.append(round(_ms(t0), 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=None, help="100; llamacpp: 40")
    parser.add_argument("--pairs", type=int, default=None, help="follow-ups; 30, llamacpp: 10")
    parser.add_argument("--articles", type=int, default=10, help="articles ingested")
    parser.add_argument("--llm", choices=["extractive", "llamacpp"], default="extractive")
    parser.add_argument("--batch", type=int, default=64, help="documents per ingest call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    local = args.llm == "llamacpp"
    if local:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            sys.exit('--llm llamacpp needs llama-cpp-python: pip install -e ".[llamacpp]"')
    n = args.questions or (40 if local else 100)
    pairs = args.pairs if args.pairs is not None else (10 if local else 30)
    all_paragraphs, all_questions = load_squad(dev_only=True)
    paragraphs, questions, articles = corpus(all_paragraphs, all_questions, args.articles)
    rng = random.Random(args.seed)
    sample, chosen, warm_ids = draw(questions, n, pairs, rng)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", llm=args.llm, _env_file=None)
        services = Services.build(settings)  # the embedder in the precision auto picks
        embedder = services.embedder
        _, ingest_stats = ingest(services.default_collection, paragraphs, args.batch)
        asyncio.run(services.aclose())
        logging.warning("ingested %s", ingest_stats)
        app = create_app(settings, embedder)
        with live_server(app, 120) as url, httpx.Client(base_url=url, timeout=600) as client:
            warm = warm_up(client, questions, warm_ids)
            times, checks, chat_replies = measure(client, questions, sample)
            follow, follow_times = follow_ups(client, questions, paragraphs, chosen, chat_replies)
    for name, values in follow_times.items():
        times[name] = {"total": values}
    summary = summarize(times)
    counts = {e: len(next(iter(ph.values()))) for e, ph in times.items()}
    result = {
        "command": " ".join(["python", "-m", "bench.endpoints", *sys.argv[1:]]),
        "dataset": f"SQuAD v1.1 dev: {len(paragraphs)} paragraphs of {len(articles)} articles "
        "as documents; questions of the pruner's dev-split articles",
        "articles": articles,
        "llm": args.llm,
        "pruner": settings.pruner,
        "retrieval": settings.retrieval,
        "chat_rewrite": settings.chat_rewrite,
        "questions": len(sample),
        "client": "one httpx client, sequential requests, uvicorn on loopback in-process",
        "ingest": ingest_stats,
        "warm_up_ms": warm,
        **summary,
        "answer_checks": checks,
        "follow_ups": follow,
        "run_s": round(time.perf_counter() - started, 1),
        "seed": args.seed,
        "machine": machine(),
    }
    name = "endpoints" + ("_llamacpp" if local else "")
    write_json(name, result)
    plot(result, RESULTS / f"{name}.png")
    print(table(summary["latency_ms"], counts))
    print("p50 / /ask JSON p50:", summary["p50_ratio_to_ask_json"])
    print("answer mismatches:", checks["answer_mismatches"])
    print("cited-passage mismatches:", checks["passage_mismatches"])
    print("follow-ups:", {k: v for k, v in follow.items() if k != "examples"})
    print(f"wrote {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
