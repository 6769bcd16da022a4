"""``sieve ask QUESTION``: the cited answer, how much context pruning removed, stage timings.

In-process by default (the app is built here on the data dir), or against a running server with
``--server``. ``--show-context`` prints every sentence of each cited passage, kept ones marked
``+`` (green on a terminal) and pruned ones ``-`` (dim), with the pruner's keep score.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.common import (
    CliError,
    Server,
    add_target_options,
    describe,
    embedder_for,
    error_detail,
    use_colour,
    with_data_dir,
)
from app.settings import Settings

KEPT, PRUNED, RESET = "\x1b[1;32m", "\x1b[2m", "\x1b[0m"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ask",
        help="ask a question, print the cited answer",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="passages in the context (default: SIEVE_TOP_K)")
    p.add_argument("--prune-threshold", type=float, help="sentence keep threshold, 0..1")
    p.add_argument(
        "--llm", help="answer backend: extractive, openai or llamacpp (if the server enables it)"
    )
    p.add_argument(
        "--retrieval", choices=["vector", "lexical", "graph", "hybrid"], help="default: hybrid"
    )
    p.add_argument(
        "--show-context", action="store_true", help="print each cited passage, kept vs pruned"
    )
    p.add_argument(
        "--explain", action="store_true", help="with --json: graph seeds and fused candidates"
    )
    p.add_argument("--json", action="store_true", help="print the full JSON response")
    add_target_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    body = _body(args)
    if args.server:
        with Server(args.server, settings.api_key) as server:
            result = server.request("POST", "/ask", json=body)
    else:
        result = _ask_local(body, with_data_dir(settings, args.data_dir))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print("\n".join(render(result, args.show_context, use_colour())))
    return 0


def _body(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "question": args.question,
        "top_k": args.top_k,
        "prune_threshold": args.prune_threshold,
        "llm": args.llm,
        "retrieval": args.retrieval,
        "explain": args.explain or None,
        "collection": args.collection,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _ask_local(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if not settings.db_path.exists():
        raise CliError(f"no documents in {settings.data_dir}: add some with `sieve ingest PATH`")
    from fastapi.testclient import TestClient

    from app.main import create_app

    local = settings.model_copy(update={"auth": False})  # in-process: the local operator
    with TestClient(create_app(local, embedder_for(settings))) as client:
        r = client.post("/ask", json=body)
    if r.status_code >= 400:
        raise CliError(f"error {r.status_code}: {error_detail(r)}")
    result: dict[str, Any] = r.json()
    return result


def render(result: dict[str, Any], show_context: bool, colour: bool) -> list[str]:
    """The answer, one line per citation (and its sentences), compression and timings."""
    lines = [result["answer"], ""]
    for c in result["citations"]:
        lines.append(_citation_line(c))
        if show_context:
            lines.extend(_sentence_line(s, colour) for s in c.get("source", []))
    lines.append(_compression_line(result["stats"]))
    lines.append(_timings_line(result["stats"]["timings_ms"]))
    return lines


def _citation_line(c: dict[str, Any]) -> str:
    found = "+".join(c.get("retrievers", {})) or "-"
    pruned = f", {c['kept_sentences']} kept / {c['pruned_sentences']} pruned"
    return (
        f"[{c['n']}] {c['title']} (chunk {c['chunk_id']}, score {c['score']:.2f}, {found}{pruned})"
    )


def _sentence_line(s: dict[str, Any], colour: bool) -> str:
    mark = "+" if s["kept"] else "-"
    line = f"    {mark} {s['score']:.2f}  {s['text']}"
    if not colour:
        return line
    return f"{KEPT if s['kept'] else PRUNED}{line}{RESET}"


def _compression_line(stats: dict[str, Any]) -> str:
    return (
        f"context: {stats['tokens_before']} → {stats['tokens_after']} tokens"
        f" ({stats['compression']:.0%} pruned) from {stats['candidates']} candidates"
        f" ({stats.get('retrieval', 'hybrid')})"
    )


def _timings_line(timings: dict[str, float]) -> str:
    stages = [f"{name} {ms:.0f}" for name, ms in timings.items() if name != "total"]
    total = timings.get("total", sum(timings.values()))
    return f"timings (ms): {', '.join(stages)}; total {total:.0f}"
