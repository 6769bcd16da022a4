"""``sieve docs list`` and ``sieve docs rm ID...``: the documents of a data dir or a server.

``rm`` is all or nothing: when any id is unknown nothing is deleted and the exit code is 1. On a
terminal it asks first (``--yes`` skips the question).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from app.cli.common import (
    CliError,
    Server,
    add_target_options,
    confirm,
    describe,
    dumps,
    embedder_for,
    printable,
    with_data_dir,
)
from app.settings import Settings

TITLE_WIDTH = 48
COLUMNS = ("id", "title", "format", "chunks", "created")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "docs",
        help="list or delete documents",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    docs = p.add_subparsers(required=True, metavar="ACTION", dest="action")

    ls = docs.add_parser(
        "list",
        help="table of documents: id, title, format, chunks, created",
        description="List the stored documents, oldest first, a page at a time.",
    )
    ls.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    ls.add_argument("--offset", type=int, default=0, help="skip this many first")
    ls.add_argument("--json", action="store_true", help="print {total, documents} as JSON")
    add_target_options(ls)
    ls.set_defaults(func=run_list)

    rm = docs.add_parser(
        "rm",
        help="delete documents by id, all or nothing",
        description="Delete documents by id: all of them, or none when any id is unknown.",
    )
    rm.add_argument("ids", nargs="+", metavar="ID", help="document ids (see `sieve docs list`)")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add_target_options(rm)
    rm.set_defaults(func=run_rm)


# ---- list ---------------------------------------------------------------------------------
def run_list(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError(f"--limit must be in 1..1000, got {args.limit}", code=2)
    if args.offset < 0:
        raise CliError(f"--offset must be >= 0, got {args.offset}", code=2)
    if args.server:
        params: dict[str, Any] = {"limit": args.limit, "offset": args.offset}
        if args.collection:
            params["collection"] = args.collection
        with Server(args.server, settings.api_key) as server:
            page = server.request("GET", "/documents", params=params)
    else:
        page = _list_local(
            with_data_dir(settings, args.data_dir), args.limit, args.offset, args.collection
        )
    if args.json:
        print(dumps(page))
    else:
        print(_page_text(page, args.offset))
    return 0


def _page_text(page: dict[str, Any], offset: int) -> str:
    shown, total = len(page["documents"]), page["total"]
    if not shown:
        return "no documents" if not total else f"no documents past {offset} (of {total})"
    rows = table(page["documents"])
    return "\n".join([*rows, f"{offset + 1}-{offset + shown} of {total} documents"])


def _list_local(
    settings: Settings, limit: int, offset: int, collection: str | None
) -> dict[str, Any]:
    if not settings.db_path.exists():  # listing must not create a data dir
        return {"total": 0, "documents": []}
    from index import DEFAULT_COLLECTION, DocumentStore

    store = DocumentStore(settings.db_path)
    name = collection or DEFAULT_COLLECTION
    try:
        docs = [asdict(r) for r in store.list_documents(limit, offset, name)]
        return {"total": store.count_documents(name), "documents": docs}
    finally:
        store.close()


def table(documents: list[dict[str, Any]]) -> list[str]:
    """Aligned rows under a header; long titles are cut with an ellipsis; control characters
    in any cell (a title, or whatever a server sent) are shown escaped."""
    rows = [COLUMNS] + [
        (
            printable(d["id"]),
            _cut(printable(d["title"]), TITLE_WIDTH),
            printable(d["format"]),
            str(d["chunk_count"]),
            printable(d["created_at"][:19].replace("T", " ")),
        )
        for d in documents
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---- rm -----------------------------------------------------------------------------------
def run_rm(args: argparse.Namespace, settings: Settings) -> int:
    ids = list(dict.fromkeys(args.ids))
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    if not args.yes and sys.stdin.isatty() and not confirm(f"delete {shown}?"):
        print("nothing deleted", file=sys.stderr)
        return 1
    if args.server:
        with Server(args.server, settings.api_key) as server:
            try:
                body = server.request("POST", "/documents/delete", json={"ids": ids})
            except CliError as exc:
                raise CliError(f"{exc}; nothing deleted") from exc
        deleted = [(doc_id, "") for doc_id in body["deleted"]]
    else:
        deleted = _rm_local(with_data_dir(settings, args.data_dir), ids)
    for doc_id, title in deleted:
        print(printable(f"deleted {doc_id}  {title}".rstrip()))
    print(f"{len(deleted)} document(s) deleted")
    return 0


def _rm_local(settings: Settings, ids: list[str]) -> list[tuple[str, str]]:
    if not settings.db_path.exists():
        raise CliError(f"no documents in {settings.data_dir} (no sieve.db): nothing deleted")
    from app.collection import DocumentNotFoundError
    from app.collections import Collections
    from app.sieve import Sieve

    collections = Collections(settings, embedder_for(settings))
    try:
        found = {i: collections.store.get_document(i) for i in ids}
        missing = [i for i, r in found.items() if r is None]
        if missing:
            raise CliError(f"no document with id {missing[0]!r}: nothing deleted")
        names = {r.collection for r in found.values() if r is not None}
        if len(names) > 1:
            raise CliError(f"ids from several collections ({sorted(names)}): nothing deleted")
        records = Sieve(settings, collections).delete(names.pop(), ids)
    except DocumentNotFoundError as exc:
        raise CliError(f"{exc}: nothing deleted") from exc
    finally:
        collections.close()
    return [(r.id, r.title) for r in records]
