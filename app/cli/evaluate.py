"""``sieve eval``: run the benchmark suite (``python -m bench.<module>``) from a source checkout.

Suites: squad (bench.squad), multihop (bench.multihop), pruner (bench.pruner_eval, then
bench.pruner_squad; each alone as pruner_eval / pruner_squad), graph (bench.graph_scale), all
(squad, multihop, pruner, graph); llm (bench.llm_local, needs the llamacpp extra). Other
arguments are passed to every module of the suite, e.g. ``sieve eval --suite squad
--ask-sample 50``. The benchmarks read ../shared/data (or SIEVE_BENCH_DATA) and write
bench/results/*.json (a smoke run overwrites the committed ones).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from app.cli.common import CliError, describe
from app.settings import Settings

SUITES: dict[str, tuple[str, ...]] = {
    "squad": ("squad",),
    "multihop": ("multihop",),
    "pruner": ("pruner_eval", "pruner_squad"),
    "graph": ("graph_scale",),
}
SUITES["all"] = tuple(m for suite in list(SUITES.values()) for m in suite)
# not in "all": one module of a suite alone, and the local-LLM speed run (llamacpp extra)
SUITES.update(
    {"pruner_eval": ("pruner_eval",), "pruner_squad": ("pruner_squad",), "llm": ("llm_local",)}
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="run the benchmark suite (from a source checkout)",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="sieve eval [-h] [--suite SUITE] [BENCH_ARGS ...]",
        allow_abbrev=False,  # an abbreviated benchmark option must not be read as --suite
    )
    p.add_argument("--suite", choices=sorted(SUITES), default="all", help="default: all")
    # main() hands the arguments it does not know to the benchmark modules as args.bench_args
    p.set_defaults(func=run, pass_through=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    root = find_checkout()
    results, reported = root / "bench" / "results", set[Path]()
    for module in SUITES[args.suite]:
        started = time.time()
        command = [sys.executable, "-m", f"bench.{module}", *args.bench_args]
        print(f"$ {' '.join(command[1:])}  (in {root})", flush=True)
        code = subprocess.call(command, cwd=root)
        if code != 0:
            print(f"sieve eval: bench.{module} exited with code {code}", file=sys.stderr)
            return code
        for path in written_since(results, started):
            if path not in reported:
                reported.add(path)
                print(f"wrote {path}")
    return 0


def find_checkout() -> Path:
    """The source tree holding ``bench/``: the working directory, or the one ``app`` was
    imported from (an editable install); ``bench`` is not part of the installed package."""
    for root in candidate_roots():
        if (root / "bench" / "__init__.py").is_file():
            return root
    raise CliError(
        "the benchmarks (bench/) are not installed with sieve: run `sieve eval` from a source"
        " checkout of the repository (its root folder holds bench/)",
        code=2,
    )


def candidate_roots() -> list[Path]:
    import app

    return [Path.cwd(), Path(app.__file__).resolve().parents[1]]


def written_since(folder: Path, started: float) -> list[Path]:
    """JSON results written in ``folder`` since ``started`` (a time.time())."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.stat().st_mtime >= started - 1)
