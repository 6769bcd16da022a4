"""``sieve ingest PATH...``: index files and folders (recursively, globs allowed).

In-process by default (the data dir is opened here; a server running on the same data dir picks
the new documents up at its next request), or uploaded to a running server with ``--server``.
One bad file never stops the others: it is reported, and the exit code is 1. Files of other
types are skipped and listed after the summary.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tqdm import tqdm

from app.cli.common import (
    CliError,
    Server,
    add_ray_options,
    add_target_options,
    describe,
    embedder_for,
    error_detail,
    printable,
    with_data_dir,
)
from app.cli.tally import Tally
from app.names import NAME_PATTERN
from app.settings import Settings

if TYPE_CHECKING:
    from app.parsing import ParsedDocument

SUPPORTED = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
SKIPPED_SHOWN = 5  # names listed before "and N more"

LOCAL_BATCH_FILES = 32  # files parsed, embedded and committed together in-process
LOCAL_BATCH_CHARS = 4_000_000  # ... or fewer, once their text passes this

# (duplicate, chunk_count) per document stored from one file
Stored = list[tuple[bool, int]]
Send = Callable[[Path], Stored]
# files → for each, what it stored or why it failed (a CliError is raised: it stops the load)
SendMany = Callable[[list[Path]], list[Stored | Exception]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="index files or folders (recursively)",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", help="files, folders or glob patterns")
    add_target_options(p)
    ray = add_ray_options(
        p,
        "bulk loads on Ray (the 'ray' extra)",
        "--ray parses and embeds in parallel with Ray Data and commits in batches to the data "
        "dir; run the same command again to resume an interrupted load",
    )
    ray.add_argument(
        "--embedders",
        type=int,
        default=0,
        help="embedding actors (default: one per GPU of the cluster, else one)",
    )
    p.set_defaults(func=run)


def iter_files(paths: Sequence[str]) -> Iterator[Path]:
    """The supported files among ``all_files(paths)``."""
    return (p for p in all_files(paths) if supported(p))


def all_files(paths: Sequence[str]) -> Iterator[Path]:
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
            if p.resolve() not in seen:
                seen.add(p.resolve())
                yield p


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED


def _plain_text(path: Path) -> bool:
    """A plain-text name (no extension, a number, .rst, .json, …) whose start looks like text."""
    from app.parsing.detect import looks_like_text, plain_text_name

    if not plain_text_name(path.name):
        return False
    try:
        with path.open("rb") as f:
            return looks_like_text(f.read(65536))
    except OSError:
        return True  # reading it again reports why it cannot be read


def skipped_line(skipped: list[Path]) -> str:
    """``skipped 3 unsupported files: a.png, b.zip, LICENSE (supported: ...)``; a long list
    ends with "and N more"."""
    names = ", ".join(str(p) for p in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    kind = "file" if len(skipped) == 1 else "files"
    types = " ".join(sorted(SUPPORTED))
    return printable(
        f"skipped {len(skipped)} unsupported {kind}: {names}{more} (supported: {types})"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    found = list(all_files(args.paths))
    # a file named on the command line may be plain text that no extension names (LICENSE,
    # Apache-2.0, ls.1): it is read if its bytes look like text; folders go by extension
    named = {Path(raw).resolve() for raw in args.paths if Path(raw).is_file()}
    chosen = {p for p in found if supported(p) or (p.resolve() in named and _plain_text(p))}
    files = [p for p in found if p in chosen]
    skipped = [p for p in found if p not in chosen]
    if not files:
        why = skipped_line(skipped) if skipped else f"supported: {' '.join(sorted(SUPPORTED))}"
        raise CliError(f"no supported files in {args.paths}; {why}")
    if args.ray:
        tally = _with_ray(args, settings, files)
        return _report(tally, files, skipped)
    if args.address or args.embedders:
        raise CliError("--address and --embedders go with --ray", code=2)
    opener = (
        _remote(args.server, settings.api_key, args.collection)
        if args.server
        else _local(with_data_dir(settings, args.data_dir), args.collection)
    )
    with opener as send:
        tally = _ingest_all(files, send, batch=1 if args.server else LOCAL_BATCH_FILES)
    return _report(tally, files, skipped)


def _report(tally: Tally, files: list[Path], skipped: list[Path]) -> int:
    print(tally.summary(len(files)))
    if skipped:
        print(skipped_line(skipped))
    for line in tally.failures:  # a file name or a parser's message may hold control characters
        print(printable(f"  failed: {line}"), file=sys.stderr)
    return 1 if tally.failures else 0


def _with_ray(args: argparse.Namespace, settings: Settings, files: list[Path]) -> Tally:
    if args.server:
        raise CliError("--ray loads into a data dir, not a server: drop --server", code=2)
    if args.embedders < 0:
        raise CliError(f"--embedders must be >= 0, got {args.embedders}", code=2)
    from app.cluster import RayMissingError

    try:
        from app.cluster.ingest import RayIngestOptions, ingest_with_ray
    except RayMissingError as exc:
        raise CliError(str(exc)) from exc
    from index import DEFAULT_COLLECTION

    options = RayIngestOptions(address=args.address, embedders=args.embedders)
    local = with_data_dir(settings, args.data_dir)
    name = args.collection or DEFAULT_COLLECTION
    if not re.fullmatch(NAME_PATTERN, name):  # before a cluster starts
        raise CliError(f"invalid collection name {name[:80]!r}", code=2)
    try:
        return ingest_with_ray(files, local, name, options)
    except RayMissingError as exc:
        raise CliError(str(exc)) from exc


def _ingest_all(files: list[Path], send: SendMany, batch: int) -> Tally:
    tally = Tally()
    bar = tqdm(total=len(files), unit="file", desc="ingesting", dynamic_ncols=True)
    for start in range(0, len(files), batch):
        group = files[start : start + batch]
        for path, outcome in zip(group, send(group), strict=True):
            if isinstance(outcome, Exception):  # reported at the end; the others go on
                tally.failures.append(f"{path}: {outcome}")
            else:
                tally.count(outcome)
        bar.update(len(group))
        bar.set_postfix(chunks=tally.chunks, chunks_s=f"{tally.chunks / tally.elapsed:.1f}")
    bar.close()
    return tally


def one_by_one(send: Send) -> SendMany:
    """Each file on its own: one bad file must not stop the others, but a ``CliError`` (the
    server went away) does: the other files would fail the same way."""

    def send_many(paths: list[Path]) -> list[Stored | Exception]:
        out: list[Stored | Exception] = []
        for path in paths:
            try:
                out.append(send(path))
            except CliError:
                raise
            except Exception as exc:
                out.append(exc)
        return out

    return send_many


@contextmanager
def _remote(url: str, api_key: str, collection: str | None) -> Iterator[SendMany]:
    params = {"collection": collection} if collection else {}
    with Server(url, api_key) as server:
        server.request("GET", "/healthz")  # fail once, clearly, when the server is not there

        def send(path: Path) -> list[tuple[bool, int]]:
            with path.open("rb") as fh:
                try:
                    r = server.client.post(
                        "/documents", files={"files": (path.name, fh)}, params=params
                    )
                except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                    raise CliError(f"lost the server at {server.url}: {exc}") from exc
            if r.status_code >= 400:
                raise RuntimeError(f"server answered {r.status_code}: {error_detail(r)}")
            return [(d["duplicate"], d["chunk_count"]) for d in r.json()["documents"]]

        yield one_by_one(send)


@contextmanager
def _local(settings: Settings, collection: str | None) -> Iterator[SendMany]:
    from app.collections import Collections
    from app.parsing import parse_document
    from app.sieve import Sieve
    from app.uploads import UploadLimits
    from index import DEFAULT_COLLECTION

    collections = Collections(settings, embedder_for(settings))
    sieve = Sieve(settings, collections)  # ingestion only: no pruner or LLM is loaded
    name = collection or DEFAULT_COLLECTION
    try:
        collections.create(name)  # the local operator may create collections
        collections.get(name)  # opened (and its files reconciled) before the first file
    except ValueError as exc:
        collections.close()
        raise CliError(str(exc), code=2) from exc

    limits = UploadLimits.of(settings).extraction  # the server's caps, so both agree

    def ingest(docs: list[tuple[Path, ParsedDocument]]) -> list[Stored | Exception]:
        """One commit (and shared embedding calls) for several files; if it fails, each file
        alone, so that only the bad one is reported."""
        try:
            results = sieve.ingest(name, [(doc, path.name) for path, doc in docs])
        except Exception as exc:
            if len(docs) == 1:
                return [exc]
            return [out for d in docs for out in ingest([d])]
        return [[(r.duplicate, r.document.chunk_count)] for r in results]

    def send_many(paths: list[Path]) -> list[Stored | Exception]:
        """Parse file by file; embed and commit whenever the parsed text passes
        LOCAL_BATCH_CHARS (so at most about that much text is held), and at the end."""
        outcome: dict[Path, Stored | Exception] = {}
        group: list[tuple[Path, ParsedDocument]] = []
        chars = 0
        for path in paths:
            try:
                doc = parse_document(path.read_bytes(), path.name, None, limits)
            except Exception as exc:
                outcome[path] = exc
                continue
            group.append((path, doc))
            chars += len(doc.text)
            if chars >= LOCAL_BATCH_CHARS:
                outcome.update(zip((p for p, _ in group), ingest(group), strict=True))
                group, chars = [], 0
        if group:
            outcome.update(zip((p for p, _ in group), ingest(group), strict=True))
        return [outcome[p] for p in paths]

    try:
        yield send_many
    finally:
        collections.close()
