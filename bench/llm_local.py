"""Local LLM speed on this CPU: Gemma 3 270M (Q4_K_M) through llama.cpp, as Sieve runs it.

    python -m bench.llm_local                     # bundled Gemma, 1 and 2 threads (~1 min)
    python -m bench.llm_local --model x.gguf --threads 4 8 --runs 3

Needs the ``llamacpp`` extra (no data set). The context is a typical Sieve one: five numbered
passages of about 70 words each (~400 prompt tokens of context, ~630 with the instructions and
worked examples), built by the backend's own prompt. Measured: model load time; prompt
processing tokens/s (prompt tokens / time to the first token, KV cache cleared before each run);
generation tokens/s (tokens after the first / the time they took, end-of-text banned so every
run generates ``--gen-tokens``); and the backend's whole ``generate`` latency with its real stop
rules. Median, min and max over ``--runs`` (a busy machine shows in the spread: llama.cpp's
threads wait for each other, so one descheduled thread stalls them all). Writes
bench/results/llm_local.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

from app.llm import ContextSentence, LlamaCppLLM, Passage, render_context
from app.llm.llamacpp import answer_prompt, assemble_default_model
from bench.common import ROOT, machine, write_json

QUESTION = "How long is the warranty on the cordless drill, and what does it cover?"
PASSAGES_TEXT = [
    (
        "Drill manual",
        "The DX-20 cordless drill comes with a two-year limited warranty from the date of "
        "purchase. The warranty covers defects in materials and workmanship under normal use. "
        "It does not cover wear parts such as brushes, chucks and bits, nor damage caused by "
        "accidents, misuse or unauthorised repairs. Keep the receipt as proof of purchase.",
    ),
    (
        "Drill manual — Batteries",
        "Batteries and chargers are covered for one year. A battery that holds less than "
        "sixty percent of its rated capacity within that year is replaced free of charge. "
        "Store batteries at room temperature and charge them fully before storing them for "
        "more than a month, otherwise their capacity drops faster than it should.",
    ),
    (
        "Service centres",
        "Warranty claims are handled by authorised service centres only. Send the tool with "
        "its battery, the receipt and a short description of the fault. Repairs under "
        "warranty are free, including return shipping within the country. A repair outside "
        "the warranty is quoted before any work starts, and the quote is valid for thirty days.",
    ),
    (
        "Safety",
        "Always wear eye protection when drilling. Secure the workpiece with clamps or a vice "
        "and never hold it in your hand. Remove the battery before changing bits or cleaning "
        "the tool. Do not use the drill in the rain or near flammable liquids, and keep "
        "children and bystanders away from the work area at all times.",
    ),
    (
        "Extended warranty",
        "Registering the drill online within thirty days of purchase extends the warranty on "
        "the tool body to three years. The extension does not apply to batteries or chargers. "
        "Registration needs the serial number printed under the battery slot and the date of "
        "purchase; a confirmation email is sent within one working day.",
    ),
]


def passages() -> list[Passage]:
    return [
        Passage(n, title, (), [ContextSentence(s, 1.0) for s in re.split(r"(?<=\.) ", text)])
        for n, (title, text) in enumerate(PASSAGES_TEXT, start=1)
    ]


def raw_run(llama: Any, prompt: str, gen_tokens: int) -> dict[str, float]:
    """One streamed completion from an empty KV cache; timings from the client side."""
    llama.reset()  # the prompt is evaluated again, not reused from the previous run
    n_prompt = len(llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False))
    started = time.perf_counter()
    first = end = 0.0
    chunks = llama(
        prompt,
        max_tokens=gen_tokens,
        temperature=0.0,
        stream=True,
        logit_bias={llama.token_eos(): -1e9},  # always generate gen_tokens
    )
    for _chunk in chunks:
        now = time.perf_counter()
        first = first or now
        end = now
    ttft = first - started
    return {
        "prompt_tokens": n_prompt,
        "ttft_s": round(ttft, 3),
        "prompt_tok_s": round(n_prompt / ttft, 1),
        "gen_tokens": gen_tokens,
        "gen_tok_s": round((gen_tokens - 1) / (end - first), 1),
    }


def measure(model: Path, threads: int | None, n_ctx: int, runs: int, gen: int) -> dict[str, Any]:
    llm = LlamaCppLLM(model, n_ctx=n_ctx, n_threads=threads, max_tokens=512).load()
    llama = llm._llama  # timed below the backend's stop rules, then through the backend
    context = render_context(passages())
    prompt = answer_prompt(QUESTION, context)
    raw = [raw_run(llama, prompt, gen) for _ in range(runs)]
    answers, latencies = [], []
    for _ in range(runs):
        llama.reset()
        started = time.perf_counter()
        answers.append(asyncio.run(llm.generate(QUESTION, passages())))
        latencies.append(time.perf_counter() - started)

    def spread(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }

    return {
        "threads": threads or f"llama.cpp default ({os.cpu_count()} cpus: half for generation)",
        "load_s": round(llm.load_s or 0.0, 2),
        "context_tokens": len(llama.tokenize(context.encode("utf-8"), add_bos=False)),
        "prompt_tokens": raw[0]["prompt_tokens"],
        "prompt_tok_s": spread([r["prompt_tok_s"] for r in raw]),
        "ttft_s": spread([r["ttft_s"] for r in raw]),
        "gen_tok_s": spread([r["gen_tok_s"] for r in raw]),
        "generate_s": spread(latencies),
        "answer": answers[0],
        "runs": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF; default: bundled Gemma")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare"
    )
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gen-tokens", type=int, default=128)
    args = parser.parse_args()

    model = args.model or assemble_default_model(args.models_dir)
    results = [measure(model, t, args.n_ctx, args.runs, args.gen_tokens) for t in args.threads]
    path = write_json(
        "llm_local",
        {"model": model.name, "n_ctx": args.n_ctx, "results": results, "machine": machine()},
    )
    for r in results:
        print({k: v for k, v in r.items() if k != "runs"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
