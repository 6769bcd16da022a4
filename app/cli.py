"""The ``sieve`` command: serve, ingest, ask.

``ingest`` and ``ask`` work on the local data dir in-process by default, or against a running
server with ``--server URL``. A server running on the same data dir picks up what ``sieve ingest``
stored at its next request (it watches SQLite for commits by other processes).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
from tqdm import tqdm

from app.settings import Settings, get_settings

SUPPORTED = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = get_settings()
    if getattr(args, "data_dir", None):
        settings = settings.model_copy(update={"data_dir": Path(args.data_dir)})
    code: int = args.func(args, settings)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sieve", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the HTTP API")
    serve.add_argument("--host", help="bind address (default: SIEVE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: SIEVE_PORT or 8000)")
    serve.add_argument("--data-dir", help="data directory (default: SIEVE_DATA_DIR or ./data)")
    serve.set_defaults(func=_serve)

    ingest = sub.add_parser("ingest", help="index files or folders (recursively)")
    ingest.add_argument("paths", nargs="+", help="files, folders or glob patterns")
    ingest.add_argument("--data-dir", help="data directory (in-process mode)")
    ingest.add_argument(
        "--server", help="send to a running server instead, e.g. http://127.0.0.1:8000"
    )
    ingest.set_defaults(func=_ingest)

    ask = sub.add_parser("ask", help="ask a question, print the cited answer")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int)
    ask.add_argument("--prune-threshold", type=float)
    ask.add_argument("--llm", help="extractive or openai")
    ask.add_argument(
        "--retrieval", choices=["vector", "lexical", "graph", "hybrid"], help="default: hybrid"
    )
    ask.add_argument(
        "--explain", action="store_true", help="with --json: graph seeds and fused candidates"
    )
    ask.add_argument("--json", action="store_true", help="print the full JSON response")
    ask.add_argument("--data-dir", help="data directory (in-process mode)")
    ask.add_argument("--server", help="ask a running server instead")
    ask.set_defaults(func=_ask)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app

    logging.getLogger().setLevel(logging.INFO)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level="info",
    )
    return 0


def iter_files(paths: Sequence[str]) -> Iterator[Path]:
    """Files named, found under folders (recursively) or matched by globs; sorted, unique."""
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            found = sorted(p for p in Path().glob(raw) if p.is_file())
        for p in found:
            if p.suffix.lower() in SUPPORTED and p.resolve() not in seen:
                seen.add(p.resolve())
                yield p


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    files = list(iter_files(args.paths))
    if not files:
        print(f"no supported files ({', '.join(sorted(SUPPORTED))}) under {args.paths}")
        return 1
    send = _sender(args.server, settings)
    added = duplicates = chunks = 0
    failures: list[str] = []
    started = time.perf_counter()
    bar = tqdm(files, unit="file", desc="ingesting")
    for path in bar:
        try:
            for doc in send(path):
                chunks += 0 if doc["duplicate"] else int(doc["chunk_count"])
                added += 0 if doc["duplicate"] else 1
                duplicates += 1 if doc["duplicate"] else 0
        except Exception as exc:  # one bad file must not stop the others; reported below
            failures.append(f"{path}: {exc}")
        elapsed = max(time.perf_counter() - started, 1e-9)
        bar.set_postfix(chunks=chunks, chunks_per_s=f"{chunks / elapsed:.1f}")
    elapsed = time.perf_counter() - started
    print(
        f"{added} added, {duplicates} already present, {len(failures)} failed;"
        f" {chunks} chunks in {elapsed:.1f}s ({chunks / max(elapsed, 1e-9):.1f} chunks/s)"
    )
    for line in failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if failures else 0


def _sender(server: str | None, settings: Settings):  # type: ignore[no-untyped-def]
    if server:
        client = httpx.Client(base_url=server, timeout=600)

        def send_http(path: Path) -> list[dict[str, object]]:
            with path.open("rb") as fh:
                r = client.post("/documents", files={"files": (path.name, fh)})
            if r.status_code >= 400:
                raise RuntimeError(r.json().get("detail", r.text))
            docs: list[dict[str, object]] = r.json()["documents"]
            return docs

        return send_http
    from app.library import Library
    from app.parsing import parse_document
    from index import Embedder

    embedder = Embedder(settings.embedder_path, settings.device, settings.embed_batch_size)
    library = Library.open(settings, embedder.load())

    def send_local(path: Path) -> list[dict[str, object]]:
        parsed = parse_document(path.read_bytes(), path.name)
        return [
            {"duplicate": r.duplicate, "chunk_count": r.document.chunk_count}
            for r in library.ingest([(parsed, path.name)])
        ]

    return send_local


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    body = {
        k: v
        for k, v in {
            "question": args.question,
            "top_k": args.top_k,
            "prune_threshold": args.prune_threshold,
            "llm": args.llm,
            "retrieval": args.retrieval,
            "explain": args.explain or None,
        }.items()
        if v is not None
    }
    if args.server:
        r = httpx.post(f"{args.server.rstrip('/')}/ask", json=body, timeout=600)
        if r.status_code >= 400:
            print(f"error {r.status_code}: {r.json().get('detail', r.text)}", file=sys.stderr)
            return 1
        result = r.json()
    else:
        result = _ask_local(body, settings)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(result["answer"])
    for c in result["citations"]:
        found = "+".join(c.get("retrievers", {}))
        print(f"  [{c['n']}] {c['title']} (chunk {c['chunk_id']}, score {c['score']:.2f}, {found})")
    stats = result["stats"]
    print(
        f"  {stats['tokens_before']} → {stats['tokens_after']} tokens"
        f" ({stats['compression']:.0%} pruned), {stats['timings_ms']['total']:.0f} ms"
    )
    return 0


def _ask_local(body: dict[str, object], settings: Settings) -> dict[str, object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings)) as client:
        r = client.post("/ask", json=body)
    if r.status_code >= 400:
        raise SystemExit(f"error {r.status_code}: {r.json().get('detail', r.text)}")
    result: dict[str, object] = r.json()
    return result


if __name__ == "__main__":
    sys.exit(main())
