"""``sieve ask QUESTION``: the cited answer, how much context pruning removed, stage timings.

Asks the server running on SIEVE_HOST:SIEVE_PORT when there is one (its models are loaded),
else builds the services in-process on the data dir (loading the models takes a few seconds;
no web app); name another server with ``--server``, or ask in-process with ``--data-dir``.
Every option of ``POST /ask`` is a flag (made from app/api/options.py). ``--show-context``
prints every sentence of each cited passage, kept ones marked ``+`` (green on a terminal) and
pruned ones ``-`` (dim), with the pruner's keep score.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from typing import Any, Literal, get_args, get_origin

import httpx
from pydantic import ValidationError

from app.api.options import AskParams
from app.api.validation import describe_validation
from app.cli.common import (
    CliError,
    Server,
    add_target_options,
    describe,
    dumps,
    printable,
    use_colour,
    with_data_dir,
)
from app.settings import Settings

log = logging.getLogger(__name__)

KEPT, PRUNED, RESET = "\x1b[1;32m", "\x1b[2m", "\x1b[0m"
PROBE_TIMEOUT_S = 0.5  # a server on loopback answers /healthz in milliseconds
LOADING_NOTE = "loading models… (start `sieve serve` for fast answers: `sieve ask` then uses it)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ask",
        help="ask a question, print the cited answer",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("question")
    add_ask_flags(p)
    p.add_argument(
        "--show-context", action="store_true", help="print each cited passage, kept vs pruned"
    )
    p.add_argument("--json", action="store_true", help="print the full JSON response")
    add_target_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    body = _body(args)
    # --data-dir names the data to ask: a server may serve another one
    server = args.server or (None if args.data_dir else running_server(settings))
    if server:
        with Server(server, settings.api_key) as client:
            result = client.request("POST", "/ask", json=body)
    else:
        result = _ask_local(body, with_data_dir(settings, args.data_dir))
    if args.json:
        print(dumps(result))
    else:
        print("\n".join(render(result, args.show_context, use_colour())))
    return 0


def add_ask_flags(p: argparse.ArgumentParser) -> None:
    """One flag per ask option of the API (app/api/options.py ``AskParams``; ``--collection``
    comes with the target options), with its description as help."""
    for name, field in AskParams.model_fields.items():
        if name == "collection":
            continue
        flag = "--" + name.replace("_", "-")
        helps = (field.description or "").replace("%", "%%")
        kinds = [k for k in get_args(field.annotation) if k is not type(None)] or [field.annotation]
        kind = kinds[0]
        if kind is bool:
            p.add_argument(flag, action="store_true", help=helps)
        elif get_origin(kind) is Literal:
            p.add_argument(flag, choices=get_args(kind), help=helps)
        else:
            p.add_argument(flag, type=kind, help=helps)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The /ask body of the flags given, checked as the server checks it (app/api/options.py)."""
    fields = {name: getattr(args, name, None) for name in AskParams.model_fields}
    fields["collection"] = args.collection
    # 0 is a value (--prune-threshold 0 keeps every sentence); an unset flag is None / False
    given = {k: v for k, v in fields.items() if v is not None and v is not False}
    body = {"question": args.question, **given}
    try:  # the options as the API checks them (the question's own checks: by the API)
        AskParams.model_validate(given)
    except ValidationError as exc:
        raise CliError(f"bad options: {describe_validation(exc.errors())}") from None
    return body


def local_url(settings: Settings) -> str:
    """Where ``sieve serve`` with these settings listens; a wildcard bind is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            host = f"[{host.strip('[]')}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{settings.port}"


def running_server(settings: Settings) -> str | None:
    """The configured server's URL when a Sieve server answers there and will take our key."""
    url = local_url(settings)
    try:
        health = httpx.get(f"{url}/healthz", timeout=PROBE_TIMEOUT_S).json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):  # ValueError: not JSON
        return None
    # another program on the port is not ours; a server that wants a key we lack would answer 401
    if not isinstance(health, dict) or health.get("status") != "ok" or "llm_backends" not in health:
        return None
    if health.get("auth") and not settings.api_key:
        return None
    log.info("asking the server running at %s", url)
    return url


def _ask_local(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if not settings.db_path.exists():
        raise CliError(f"no documents in {settings.data_dir}: add some with `sieve ingest PATH`")
    print(LOADING_NOTE, file=sys.stderr, flush=True)
    from app.cli.ask_here import ask_here  # the services and their models: only now

    return ask_here(body, settings)


def render(result: dict[str, Any], show_context: bool, colour: bool) -> list[str]:
    """The answer, one line per citation (and its sentences), compression and timings; control
    characters in the documents' text are shown escaped, never sent to the terminal."""
    lines = [printable(result["answer"]), ""]
    for c in result["citations"]:
        lines.append(_citation_line(c))
        if show_context:
            lines.extend(_sentence_line(s, colour) for s in c.get("source", []))
    lines.append(printable(_compression_line(result["stats"])))
    lines.append(printable(_timings_line(result["stats"]["timings_ms"])))
    return lines


def _citation_line(c: dict[str, Any]) -> str:
    found = "+".join(c.get("retrievers", {})) or "-"
    pruned = f", {c['kept_sentences']} kept / {c['pruned_sentences']} pruned"
    hop = ""
    if c.get("hop"):
        via = f" from [{c['led_by']}]" if c.get("led_by") else ""
        hop = f", hop {c['hop']} via {c.get('bridge')}{via}"
    return printable(
        f"[{c['n']}] {c['title']} (chunk {c['chunk_id']}, score {c['score']:.2f}, "
        f"{found}{pruned}{hop})"
    )


def _sentence_line(s: dict[str, Any], colour: bool) -> str:
    mark = "+" if s["kept"] else "-"
    line = printable(f"    {mark} {s['score']:.2f}  {s['text']}")
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
