"""Questions over real documents nobody here wrote: Debian's licence texts, man pages and the
Debian Python policy, as a new user would ask them.

    python -m bench.realdocs                                  # the shipped pruner (~2 min)
    python -m bench.realdocs --pruner-path runs/pruner-v3     # another checkpoint

The corpus is read from this machine (``/usr/share/common-licenses``, man pages rendered by
``man``, ``/usr/share/doc/python3/python-policy.txt.gz``): hard-wrapped plain text with numbered
clauses, option lists and indented blocks, unlike any training source. A question whose file is
missing is skipped and reported; with no corpus at all the bench fails with a clear message.
The questions and their expected strings were written from the files before any model was run
on them and are never used to train or tune anything.

Per question, through the service's pipeline (hybrid retrieval, the pruner, extractive answers,
default settings, in-process): the expected string (case and whitespace ignored) in the answer's
first sentence, anywhere in the answer, in the context sent to the LLM, and in the context sent
unpruned (``prune_threshold`` 0; still cut to the token budget, as the service would send it).
Writes bench/results/realdocs[-NAME].json.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import machine, write_json

LICENSES = Path("/usr/share/common-licenses")
POLICY = Path("/usr/share/doc/python3/python-policy.txt.gz")
MAN_PAGES = ("ls", "cp", "grep", "tar", "ssh")


@dataclass(frozen=True)
class Question:
    source: str  # document title in the corpus
    text: str
    expected: str


QUESTIONS = [
    Question(
        "Apache-2.0",
        "Under the Apache License, when do my patent licenses end if I sue claiming the Work "
        "infringes a patent?",
        "as of the date such litigation is filed",
    ),
    Question(
        "Apache-2.0",
        "What kind of patent licence does each Contributor grant under the Apache License?",
        "perpetual, worldwide",
    ),
    Question(
        "GPL-3",
        "Under GPLv3, once I stop violating the licence, how long does the copyright holder "
        "have to notify me before my licence is reinstated permanently?",
        "60 days after the cessation",
    ),
    Question(
        "GPL-3",
        'What does "the Program" refer to in the GPL?',
        "refers to any copyrightable work licensed under this",
    ),
    Question(
        "MPL-2.0",
        "Under the Mozilla Public License, how soon after a first notice of non-compliance "
        "must I become compliant?",
        "30 days after your receipt of the notice",
    ),
    Question(
        "BSD",
        "May the names of the copyright holders be used to promote products derived from "
        "BSD-licensed software?",
        "without specific prior written permission",
    ),
    Question("ls", "Which ls option uses a long listing format?", "use a long listing format"),
    Question("ls", "How do I make ls sort by time, newest first?", "sort by time, newest first"),
    Question("cp", "Which attributes does cp -p preserve?", "mode,ownership,timestamps"),
    Question(
        "grep",
        "Which grep option ignores case distinctions?",
        "ignore case distinctions in patterns",
    ),
    Question("tar", "Which tar option extracts files from an archive?", "extract files from an"),
    Question(
        "tar", "How do I make tar filter the archive through gzip?", "filter the archive through"
    ),
    Question(
        "ssh",
        "Which ssh option gives the port to connect to on the remote host?",
        "port to connect to on the remote host",
    ),
    Question("ssh", "How do I enable X11 forwarding with ssh?", "enables x11 forwarding"),
    Question(
        "python-policy",
        "Where must public Python 3 modules be installed on Debian?",
        "/usr/lib/python3/dist-packages",
    ),
]


def _man(page: str) -> str | None:
    env = {**os.environ, "MANWIDTH": "80"}
    try:
        raw = subprocess.run(
            ["man", "-P", "cat", page], capture_output=True, env=env, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # drop overstrike bold/underline (col -b does the same)
    text = re.sub(r".\x08", "", raw.decode("utf-8", "replace"))
    return text if text.strip() else None


def corpus() -> dict[str, str]:
    """Title → text of every document of this machine the questions need."""
    docs: dict[str, str] = {}
    for name in ("Apache-2.0", "GPL-3", "MPL-2.0", "BSD"):
        if (LICENSES / name).is_file():
            docs[name] = (LICENSES / name).read_text(encoding="utf-8", errors="replace")
    for page in MAN_PAGES:
        if (text := _man(page)) is not None:
            docs[page] = text
    if POLICY.is_file():
        docs["python-policy"] = gzip.decompress(POLICY.read_bytes()).decode("utf-8", "replace")
    return docs


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


def first_sentence(answer: str) -> str:
    """The answer's first sentence, citation marks kept (the extractive answer leads with it)."""
    return re.split(r"(?<=[.!?])\s+|\n", answer.strip(), maxsplit=1)[0]


def run(pruner_path: Path | None, pruner: str) -> dict[str, Any]:
    from app.parsing import parse_text
    from app.services import Services
    from app.settings import Settings
    from index import Embedder

    docs = corpus()
    if not docs:
        raise SystemExit("no real documents found (/usr/share/common-licenses, man): nothing to do")
    asked = [q for q in QUESTIONS if q.source in docs]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data", pruner=pruner, pruner_path=pruner_path, _env_file=None
        )
        services = Services.build(settings, Embedder().load())
        services.default_collection.ingest([(parse_text(t, x), "txt") for t, x in docs.items()])
        options = services.sieve.default_options()
        for q in asked:
            result = asyncio.run(services.pipeline.ask(q.text, options))
            unpruned = asyncio.run(
                services.pipeline.ask(q.text, replace(options, prune_threshold=0.0))
            )
            want = norm(q.expected)
            rows.append(
                {
                    "source": q.source,
                    "question": q.text,
                    "expected": q.expected,
                    "first_sentence": want in norm(first_sentence(result.answer)),
                    "in_answer": want in norm(result.answer),
                    "in_context": want in norm(result.context),
                    "in_unpruned_context": want in norm(unpruned.context),
                    "cited_source": q.source in {c.title for c in result.citations},
                    "tokens_sent": result.tokens_after,
                    "tokens_unpruned": unpruned.tokens_after,
                    "answer": result.answer[:400],
                }
            )
            print(rows[-1]["first_sentence"], rows[-1]["in_context"], q.text[:60], flush=True)
        asyncio.run(services.aclose())
    n = len(rows)

    def share(key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / n, 3) if n else 0.0

    return {
        "machine": machine(),
        "pruner": pruner,
        "pruner_path": str(pruner_path) if pruner_path else "shipped",
        "documents": {t: len(x) for t, x in docs.items()},
        "questions": n,
        "skipped": [q.text for q in QUESTIONS if q.source not in docs],
        "answer_first_sentence": share("first_sentence"),
        "answer_anywhere": share("in_answer"),
        "in_context_sent": share("in_context"),
        "in_unpruned_context": share("in_unpruned_context"),
        "cited_right_document": share("cited_source"),
        "tokens_sent_mean": round(sum(r["tokens_sent"] for r in rows) / max(n, 1), 1),
        "tokens_unpruned_mean": round(sum(r["tokens_unpruned"] for r in rows) / max(n, 1), 1),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pruner-path", type=Path, default=None)
    parser.add_argument("--pruner", default="provence", help="provence or similarity")
    parser.add_argument("--name", default="", help="suffix of the results file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = run(args.pruner_path, args.pruner)
    write_json("realdocs" + (f"-{args.name}" if args.name else ""), out)
    summary = {k: v for k, v in out.items() if k not in ("rows", "machine", "documents")}
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
