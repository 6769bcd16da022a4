"""Multi-hop retrieval: vector vs lexical vs graph vs hybrid, and after pruner reranking.

    python -m bench.multihop                  # all questions (~20 min on 2 CPU cores)
    python -m bench.multihop --questions 100  # a quick look

Corpus: every paragraph of the multi-hop sets in ../shared/data that carry supporting facts
(HotpotQA train sample, HotpotQA fullwiki dev subsets, MuSiQue train sample), one document per
distinct (title, text), ingested through the real Collection (FAISS + BM25 + knowledge graph).
Questions: those whose gold paragraphs are all in the corpus. A question counts as found at k
when ALL its gold paragraphs are among the first k distinct documents ("all-gold recall@k").

No retriever here is trained, so every question may be scored for vector / lexical / graph /
hybrid. The pruner-reranked row uses only questions the pruner never trained on (its training
used the HotpotQA train sample's train split; MuSiQue and the fullwiki dev subsets not at all).

Also: extraction quality (the share of gold paragraph titles, i.e. the bridge entities, that the
extractor finds in the body text of other paragraphs), graph ingest cost (ms per chunk), query
latency per stage, and the memory of the graph and the BM25 index per 10k chunks.
Writes bench/results/multihop.json and .png.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.parsing import parse_text
from app.parsing.sentences import split_sentences
from app.pipeline import RETRIEVERS, Candidate, fuse
from app.services import Services
from app.settings import Settings
from bench.common import RESULTS, data_dir, machine, percentiles, require, write_json
from graph import KnowledgeGraph
from graph.extract import extract, title_mentions
from index import Embedder, LexicalIndex
from pruner import BlendedPruner
from pruner.data import split_of

KS = (5, 10, 20)


@dataclass(frozen=True)
class Question:
    text: str
    gold: frozenset[tuple[str, str]]  # (title, text) of every supporting paragraph
    source: str
    trained_on: bool  # by the pruner
    answers: tuple[str, ...] = ()  # answer strings (yes/no answers left out)


def _hotpot(path: Path, source: str, trained: Callable[[str], bool]) -> Any:
    items = (
        json.loads(path.read_text())
        if path.suffix == ".json"
        else [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    )
    for item in items:
        paragraphs = {title: "".join(sents).strip() for title, sents in item["context"]}
        gold_titles = {title for title, _ in item["supporting_facts"]}
        gold = (
            frozenset((t, paragraphs[t]) for t in gold_titles)
            if gold_titles <= set(paragraphs)
            else None
        )
        yield (
            list(paragraphs.items()),
            Question(
                item["question"], gold, source, trained(item["_id"]), _answers([item["answer"]])
            )
            if gold
            else None,
        )


def _musique(path: Path) -> Any:
    for item in json.loads(path.read_text()):
        paragraphs = [(p["title"], p["paragraph_text"].strip()) for p in item["paragraphs"]]
        gold = frozenset(
            (p["title"], p["paragraph_text"].strip())
            for p in item["paragraphs"]
            if p["is_supporting"]
        )
        answers = _answers([item["answer"], *item.get("answer_aliases", [])])
        yield paragraphs, Question(item["question"], gold, "musique_train100", False, answers)


def _answers(texts: list[str]) -> tuple[str, ...]:
    return tuple(t for t in texts if t.strip() and t.strip().lower() not in ("yes", "no"))


def load() -> tuple[list[tuple[str, str]], list[Question]]:
    base = data_dir()
    corpus: dict[tuple[str, str], None] = {}
    questions: list[Question] = []
    sources = [
        _hotpot(
            require(base / "hotpotqa_hipporag_train100" / "hotpotqa_train.json"),
            "hotpotqa_train100",
            lambda qid: split_of("hotpotqa", qid) == "train",
        ),
        _hotpot(
            require(base / "hotpotqa_fullwiki_dev_subsets" / "amor_test500.jsonl"),
            "hotpotqa_fullwiki_amor",
            lambda qid: False,
        ),
        _hotpot(
            require(base / "hotpotqa_fullwiki_dev_subsets" / "tts_sampled500.jsonl"),
            "hotpotqa_fullwiki_tts",
            lambda qid: False,
        ),
        _musique(require(base / "musique_hipporag_train100" / "musique_train.json")),
    ]
    seen: set[str] = set()
    for source in sources:
        for paragraphs, question in source:
            for p in paragraphs:
                if p[1]:
                    corpus[p] = None
            if question is not None and question.text not in seen and len(question.gold) > 1:
                seen.add(question.text)
                questions.append(question)
    return list(corpus), questions


def ranked_docs(candidates: Sequence[Candidate], order: Sequence[int] | None = None) -> list[str]:
    order = range(len(candidates)) if order is None else order
    docs = [candidates[i].chunk.document_id for i in order]
    return [d for d in dict.fromkeys(docs) if d]  # the graph-facts passage has no document


def recall(found: list[list[str]], gold: list[set[str]], ks: Sequence[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"all_gold@{k}"] = round(
            float(np.mean([g <= set(f[:k]) for f, g in zip(found, gold, strict=True)])), 4
        )
        shares = [len(g & set(f[:k])) / len(g) for f, g in zip(found, gold, strict=True)]
        out[f"gold_share@{k}"] = round(float(np.mean(shares)), 4)
    return out


def bridge_extraction(questions: Sequence[Question]) -> dict[str, float]:
    """Bridge entities: a gold paragraph's title (its head, before a comma or parenthesis)
    that literally occurs in another gold paragraph of the same question. Share of those the
    extractor finds as an entity of that other paragraph."""
    present = found = 0
    for q in questions:
        for title, _ in q.gold:
            head = re.sub(r"\s*\([^)]*\)", "", title).split(",")[0].strip().casefold()
            others = [text for t, text in q.gold if t != title and head in text.casefold()]
            if not others:
                continue
            present += 1
            keys = {m.key for text in others for m in extract(_sentences(text))}
            found += any(m.key in keys for m in title_mentions(title, -1))
    return {
        "bridge_titles_in_text": present,
        "found": found,
        "share": round(found / present, 4) if present else 0.0,
    }


def _sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def memory_per_10k(services: Services, data: Path) -> dict[str, float]:
    """RSS added by loading the graph and the BM25 index (matrix built) from their files."""
    chunks = services.default_collection.store.count_chunks()
    out: dict[str, float] = {"chunks": chunks}
    for name, load in (
        ("graph", lambda: KnowledgeGraph.load(data / "graph.npz")),
        ("bm25", lambda: _bm25_loaded(data / "bm25.npz")),
    ):
        gc.collect()
        before = rss_mb()
        obj = load()
        out[f"{name}_mb_per_10k_chunks"] = round((rss_mb() - before) * 10_000 / chunks, 1)
        out[f"{name}_file_mb"] = round((data / f"{name}.npz").stat().st_size / 2**20, 1)
        del obj
    return out


def _bm25_loaded(path: Path) -> LexicalIndex:
    index = LexicalIndex.load(path)
    index.search("warm up the matrix", 1)
    return index


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["recall"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(KS)
    for j, k in enumerate(KS):
        values = [rows[n].get(f"all_gold@{k}", np.nan) for n in names]
        xs = np.arange(len(names)) + j * width
        ax.bar(xs, values, width, label=f"all gold in top {k}")
        for x, v in zip(xs, values, strict=True):
            if not np.isnan(v):
                ax.text(x, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(
        np.arange(len(names)) + width * (len(KS) - 1) / 2,
        [n.replace(" (", "\n(").replace(", ", ",\n") for n in names],
        fontsize=7,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of questions")
    ax.set_title(
        f"Multi-hop retrieval, {result['questions']} questions, "
        f"{result['corpus']['documents']} paragraphs"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _end_to_end(
    services: Any, questions: list[Question], candidates: list[list[Candidate]]
) -> dict[str, Any]:
    """What the service would SEND to the LLM for each held-out question (its hybrid candidates
    pruned, ordered and cut to the token budget), unpruned (threshold 0) vs at the default
    threshold: answer string in the context and tokens sent, per rerank order."""
    out: dict[str, Any] = {}
    for mode in ("fused", "mix"):
        for label, threshold in (("unpruned", 0.0), ("default", None)):
            options = services.sieve.options(
                prune_threshold=threshold, hops=0
            )  # one pass: bench.chain
            kept = tokens = answered = 0
            for q, cands in zip(questions, candidates, strict=True):
                services.pipeline.rerank = mode
                answer = services.pipeline._prune(q.text, options, cands, None, {})
                tokens += answer.tokens_after
                if q.answers:
                    kept += 1
                    context = answer.context.casefold()
                    answered += any(a.casefold() in context for a in q.answers)
            out[f"{mode} {label}"] = {
                "answer_in_context": round(answered / max(kept, 1), 4),
                "tokens_sent_mean": round(tokens / max(len(questions), 1), 1),
                "questions_with_answers": kept,
            }
        un, de = out[f"{mode} unpruned"], out[f"{mode} default"]
        out[f"{mode} default vs unpruned"] = {
            "answers_kept": round(de["answer_in_context"] / max(un["answer_in_context"], 1e-9), 4),
            "token_share": round(de["tokens_sent_mean"] / max(un["tokens_sent_mean"], 1e-9), 4),
        }
    services.pipeline.rerank = services.settings.rerank
    print("end to end:", json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=0, help="random sample (0: all)")
    parser.add_argument(
        "--max-docs",
        type=int,
        default=0,
        help="smaller corpus for a smoke run: the sampled questions' gold paragraphs plus random "
        "others up to this many (0: the whole corpus)",
    )
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64, help="documents per ingest call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="multihop")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the ingested corpus here; a later run with the same dir skips ingestion "
        "(for tuning retrieval; its ingest figures are then not valid)",
    )
    parser.add_argument(
        "--dump", type=Path, help="also write each question's per-retriever document lists here"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    corpus, questions = load()
    if args.questions and args.questions < len(questions):
        questions = random.Random(args.seed).sample(questions, args.questions)
    if args.max_docs and args.max_docs < len(corpus):
        needed = {p for q in questions for p in q.gold}
        rest = [p for p in corpus if p not in needed]
        random.Random(args.seed).shuffle(rest)
        corpus = [*needed, *rest[: max(0, args.max_docs - len(needed))]]
    print(f"{len(corpus)} paragraphs, {len(questions)} questions", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir or Path(tmp) / "data"
        reused = (data / "sieve.db").exists()
        settings = Settings(data_dir=data, _env_file=None)  # type: ignore[call-arg]
        services = Services.build(settings, Embedder().load())
        collection = services.default_collection
        graph_ms: list[float] = []
        add = collection.graph.add

        def timed_add(*a: Any, **kw: Any) -> None:
            t = time.perf_counter()
            add(*a, **kw)
            graph_ms.append((time.perf_counter() - t) * 1000)

        collection.graph.add = timed_add  # type: ignore[method-assign]
        doc_of: dict[tuple[str, str], str] = {}
        started = time.perf_counter()
        for i in range(0, len(corpus), args.batch):
            part = corpus[i : i + args.batch]
            results = collection.ingest([(parse_text(t, x), "json") for t, x in part])
            doc_of.update({p: r.document.id for p, r in zip(part, results, strict=True)})
            if i // args.batch % 20 == 0:
                print(f"ingested {i + len(part)}/{len(corpus)}", flush=True)
        ingest_s = time.perf_counter() - started
        chunks = collection.store.count_chunks()
        collection.save_index()
        ingest = {
            "reused_data_dir": reused,  # True: documents were already stored, timings invalid
            "documents": len(corpus),
            "chunks": chunks,
            "entities": collection.graph.entity_count,
            "graph_nodes": collection.graph.g.number_of_nodes(),
            "graph_edges": collection.graph.g.number_of_edges(),
            "seconds": round(ingest_s, 1),
            "chunks_per_s": round(chunks / ingest_s, 1),
            "graph_ms_per_chunk": round(sum(graph_ms) / chunks, 2),
            "graph_share_of_ingest": round(sum(graph_ms) / 1000 / ingest_s, 3),
        }
        record = data / "bench_ingest.json"  # the timings of the run that built the data dir
        if reused and record.exists():
            ingest = {**json.loads(record.read_text()), "reused_data_dir": True}
        elif not reused:
            record.write_text(json.dumps(ingest))
        print("ingest", ingest, flush=True)

        # extraction quality: gold titles found as entities in OTHER paragraphs' body text
        body_keys = {
            m[0] for r in collection.graph.records.values() for m in r.mentions if m[2] != "title"
        }
        body_keys |= {collection.graph.aliases.get(k, k) for k in body_keys}
        gold_titles = {t for q in questions for t, _ in q.gold}
        found_titles = sum(
            any(
                m.key in body_keys or collection.graph.aliases.get(m.key) in body_keys
                for m in title_mentions(t, -1)
            )
            for t in gold_titles
        )
        extraction = {
            "gold_titles": len(gold_titles),
            "found_in_any_body_text": found_titles,
            "share": round(found_titles / len(gold_titles), 4),
            "bridges": bridge_extraction(questions),
        }
        print("extraction", extraction, flush=True)

        gold = [{doc_of[p] for p in q.gold} for q in questions]
        k = args.candidates
        variants: dict[str, Callable[[dict[str, Any]], list[Candidate]]] = {
            "vector": lambda ch: fuse({"vector": ch["vector"]}, k),
            "lexical": lambda ch: fuse({"lexical": ch["lexical"]}, k),
            "graph": lambda ch: fuse({"graph": ch["graph"]}, k),
            "hybrid": lambda ch: fuse(ch, k),  # the service's fusion
            "hybrid, plain RRF cut": lambda ch: fuse(ch, k, protect=0),
            "vector + lexical": lambda ch: fuse({n: ch[n] for n in ("vector", "lexical")}, k),
        }
        found: dict[str, list[list[str]]] = {m: [] for m in variants}
        stage_ms: dict[str, list[float]] = {}
        hybrid: list[list[Candidate]] = []
        dump: list[dict[str, Any]] = []
        for n, q in enumerate(questions):
            timings: dict[str, float] = {}
            channels, _ = services.pipeline.retrieval.search_channels(
                q.text, RETRIEVERS, k, timings
            )
            dump.append(
                {
                    "question": q.text,
                    "source": q.source,
                    "gold": sorted(gold[n]),
                    **{name: [c.document_id for c, _ in hits] for name, hits in channels.items()},
                }
            )
            for stage, ms in timings.items():
                stage_ms.setdefault(stage, []).append(ms)
            for name, variant in variants.items():
                cands = variant(channels)
                found[name].append(ranked_docs(cands))
                if name == "hybrid":
                    hybrid.append(cands)
            if n % 100 == 0:
                print(f"retrieved {n}/{len(questions)}", flush=True)
        rows = {m: recall(found[m], gold, KS) for m in variants}

        # pruner reranking of the hybrid candidates, on questions it never trained on
        held_out = [i for i, q in enumerate(questions) if not q.trained_on]
        prune_ms: list[float] = []
        reranked: dict[str, list[list[str]]] = {"fused": [], "blend": [], "mix": [], "pruner": []}
        for i in held_out:
            cands = hybrid[i]
            t = time.perf_counter()
            texts = [[s.text for s in c.chunk.sentences] for c in cands]
            pruner = services.pruner
            if isinstance(pruner, BlendedPruner):  # /ask orders on the model's own scores
                pruned = pruner.raw(questions[i].text, texts)
            else:
                pruned = pruner.process(questions[i].text, texts, always_select_title=False)
            prune_ms.append((time.perf_counter() - t) * 1000)
            passages = [c.chunk for c in cands]
            for mode, ranked in reranked.items():
                order = services.pipeline.order(questions[i].text, passages, pruned, mode=mode)
                ranked.append(ranked_docs(cands, order))
        end_to_end = _end_to_end(
            services, [questions[i] for i in held_out], [hybrid[i] for i in held_out]
        )
        held_gold = [gold[i] for i in held_out]
        rows["hybrid (held-out questions)"] = recall(
            [found["hybrid"][i] for i in held_out], held_gold, KS
        )
        rows["rerank fused (held-out)"] = recall(reranked["fused"], held_gold, KS[:2])
        rows["rerank blend (held-out)"] = recall(reranked["blend"], held_gold, KS[:2])
        rows["rerank mix (held-out)"] = recall(reranked["mix"], held_gold, KS[:2])
        rows["rerank head alone (held-out)"] = recall(reranked["pruner"], held_gold, KS[:2])
        for name, row in rows.items():
            print(f"{name:36s} {row}", flush=True)
        if args.dump:
            args.dump.write_text(json.dumps(dump))
        memory = memory_per_10k(services, data)
        services.default_collection.close()

    by_source = {
        src: {
            m: recall(
                [found[m][i] for i, q in enumerate(questions) if q.source == src],
                [gold[i] for i, q in enumerate(questions) if q.source == src],
                (10,),
            )["all_gold@10"]
            for m in variants
        }
        for src in sorted({q.source for q in questions})
    }
    result = {
        "benchmark": "multihop retrieval",
        "machine": machine(),
        "corpus": {"documents": len(corpus), "chunks": chunks},
        "questions": len(questions),
        "held_out_questions": len(held_out),
        "questions_by_source": {s: sum(q.source == s for q in questions) for s in by_source},
        "candidates_per_retriever": args.candidates,
        "recall": rows,
        "all_gold@10_by_source": by_source,
        "extraction": extraction,
        "ingest": ingest,
        "query_ms_per_stage": {s: percentiles(v) for s, v in stage_ms.items()},
        "prune_ms": percentiles(prune_ms),
        "end_to_end_context": end_to_end,
        "memory": memory,
    }
    path = write_json(args.name, result)
    plot(result, RESULTS / f"{args.name}.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
