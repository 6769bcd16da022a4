"""Candidate-list training data for pruner v3 (pruner/breadth.py), one loader per source.

A source gives questions (``Query``) and a pool of passages of its training-split documents.
A query names its gold passages (pool index + sentence labels) and, where the source has them,
fixed hard negatives (HotpotQA distractors, SciFact cited abstracts without evidence, a SQuAD v2
unanswerable question's own paragraph); the trainer adds negatives that MiniLM and BM25
retrieve from the pool for the question. Only training-split documents are used
(``pruner.data.split_of``); the dev-split ones stay for bench/heldout.py.

Sources: SQuAD v1.1 dev articles (+ SQuAD v2 unanswerable questions), WikiQA train, SciFact
train claims, the HotpotQA train sample, ERASER MultiRC train part (its val paragraphs are
disjoint and stay for evaluation) and ERASER FEVER (split by Wikipedia page). Held out of
training by design: MuSiQue and HotpotQA fullwiki (multi-hop), COVID-QA and SubjQA (domain).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

from pruner.data import _wikiqa_rows, detok, split_of, squad_labels
from pruner.inference import split_sentences


@dataclass(frozen=True)
class Passage:
    title: str  # shown as a heading in some training shapes ("" when the source has none)
    sentences: list[str]
    labels: list[int]  # 0/1 per sentence (all 0 for a pool passage seen as a negative)


@dataclass(frozen=True)
class Query:
    question: str
    gold: list[tuple[int, list[int]]]  # (pool index, sentence labels); empty: unanswerable
    fixed: list[int] = field(default_factory=list)  # pool indices of the source's own negatives
    banned: frozenset[int] = frozenset()  # pool passages that must not be used as negatives


@dataclass
class Source:
    name: str
    queries: list[Query]
    pool: list[Passage]  # training-split passages (labels all 0); gold ones are pool entries


def _add(pool: list[Passage], seen: dict[tuple[str, ...], int], passage: Passage) -> int:
    """Index of ``passage`` in ``pool``, added once: a passage that two questions share (WikiQA
    candidate lists, HotpotQA paragraphs) is one pool entry, so a copy of a question's gold
    passage is never drawn as its negative."""
    key = tuple(passage.sentences)
    if key not in seen:
        seen[key] = len(pool)
        pool.append(passage)
    return seen[key]


def _page(
    pool: list[Passage], seen: dict[tuple[str, ...], int], title: str, raw: list[str]
) -> tuple[int, list[int]]:
    """A PTB-tokenised ERASER document as a pool passage (added once): its index and which raw
    sentence indices it kept (empty sentences are dropped, so labels must be re-indexed)."""
    sentences = [detok(x) for x in raw]
    keep = [i for i, x in enumerate(sentences) if x]
    return _add(pool, seen, Passage(title, [sentences[i] for i in keep], [0] * len(keep))), keep


def _read_jsonl(path: Path) -> Iterator[Any]:
    with path.open(encoding="utf-8") as fh:
        yield from (json.loads(line) for line in fh if line.strip())


def squad(data: Path) -> Source:
    """Training-split SQuAD v1.1 dev articles; SQuAD v2's unanswerable questions on the same
    paragraphs (SQuAD 2.0 dev reuses the v1.1 dev articles) are queries without gold."""
    pool: list[Passage] = []
    index: dict[str, int] = {}
    queries: list[Query] = []
    for article in json.loads((data / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]:
        if split_of("squad_v1", article["title"]) != "train":
            continue
        title = article["title"].replace("_", " ")
        for para in article["paragraphs"]:
            index[para["context"]] = len(pool)
            sentences = split_sentences(para["context"])
            pool.append(Passage(title, sentences, [0] * len(sentences)))
            for qa in para["qas"]:
                _, labels, _ = squad_labels(para["context"], qa["answers"][0]["answer_start"])
                queries.append(Query(qa["question"], [(len(pool) - 1, labels)]))
    v2 = data / "squad_v2.0_cs224n_dev_half" / "dev-v2.0-cs224n-half.json"
    for article in json.loads(v2.read_text())["data"]:
        if split_of("squad_v1", article["title"]) != "train":
            continue
        for para in article["paragraphs"]:
            at = index.get(para["context"])
            if at is None:
                at = index[para["context"]] = len(pool)
                sentences = split_sentences(para["context"])
                pool.append(Passage(article["title"], sentences, [0] * len(sentences)))
            for qa in para["qas"]:
                if qa.get("is_impossible"):
                    queries.append(Query(qa["question"], [], [at], frozenset({at})))
    return Source("squad", queries, pool)


def wikiqa(data: Path) -> Source:
    """Training-split WikiQA questions: a question's candidate sentences are one passage.
    Questions about the same page share their candidates word for word; a training question
    whose candidates are those of a dev-split question is left out (the split is by question,
    so the dev passage would otherwise be trained on under another wording)."""
    rows = list(_wikiqa_rows(data / "wikiqa" / "WikiQA-train.tsv"))
    dev = {tuple(sentences) for key, _, sentences, _ in rows if split_of("wikiqa", key) == "dev"}
    pool: list[Passage] = []
    seen: dict[tuple[str, ...], int] = {}
    queries: list[Query] = []
    for key, question, sentences, labels in rows:
        if split_of("wikiqa", key) != "train" or not sentences or tuple(sentences) in dev:
            continue
        at = _add(pool, seen, Passage("", sentences, [0] * len(sentences)))
        if any(labels):
            queries.append(Query(question, [(at, labels)]))
        else:  # no answer among its own candidates: they are its hardest negatives
            queries.append(Query(question, [], [at], frozenset({at})))
    return Source("wikiqa", queries, pool)


def scifact(data: Path) -> Source:
    """SciFact train claims whose cited abstracts are all in the training split."""
    corpus = {str(d["doc_id"]): d for d in _read_jsonl(data / "scifact" / "corpus.jsonl")}
    names = sorted(d for d in corpus if split_of("scifact", d) == "train")
    at = {name: i for i, name in enumerate(names)}
    pool = [
        Passage(corpus[n]["title"], list(corpus[n]["abstract"]), [0] * len(corpus[n]["abstract"]))
        for n in names
    ]
    queries: list[Query] = []
    for claim in _read_jsonl(data / "scifact" / "claims_train.jsonl"):
        evidence = {str(d): r for d, r in claim["evidence"].items()}
        cited = {str(d) for d in claim.get("cited_doc_ids", [])} | set(evidence)
        if not cited or any(d not in at for d in cited):
            continue
        gold = []
        for d, rationales in evidence.items():
            lines = {i for r in rationales for i in r["sentences"]}
            gold.append((at[d], [int(i in lines) for i in range(len(pool[at[d]].sentences))]))
        fixed = [at[d] for d in sorted(cited - set(evidence))]
        queries.append(Query(claim["claim"], gold, fixed, frozenset(at[d] for d in cited)))
    return Source("scifact", queries, pool)


def hotpotqa(data: Path) -> Source:
    """HotpotQA train sample (training-split questions): two gold paragraphs among ten."""
    items = json.loads((data / "hotpotqa_hipporag_train100" / "hotpotqa_train.json").read_text())
    pool: list[Passage] = []
    seen: dict[tuple[str, ...], int] = {}
    queries: list[Query] = []
    for item in items:
        if split_of("hotpotqa", item["_id"]) != "train":
            continue
        support = {(t, i) for t, i in item["supporting_facts"]}
        gold, fixed = [], []
        for title, sentences in item["context"]:
            kept = [(i, s.strip()) for i, s in enumerate(sentences) if s.strip()]
            if not kept:
                continue
            labels = [int((title, i) in support) for i, _ in kept]
            at = _add(pool, seen, Passage(title, [s for _, s in kept], [0] * len(kept)))
            if any(labels):
                gold.append((at, labels))
            else:
                fixed.append(at)
        if gold:
            banned = frozenset(i for i, _ in gold) | frozenset(fixed)
            queries.append(Query(item["question"], gold, fixed, banned))
    return Source("hotpotqa", queries, pool)


def multirc(data: Path) -> Source:
    """ERASER MultiRC train part (396 paragraphs; the val paragraphs are disjoint)."""
    pool: list[Passage] = []
    seen: dict[tuple[str, ...], int] = {}
    queries: list[Query] = []
    for x in _read_jsonl(data / "eraser_multirc" / "multirc_train_part.jsonl"):
        at, keep = _page(pool, seen, "", x["sentences"])
        evidence = set(x["evidence_sentence_ids"])
        labels = [int(i in evidence) for i in keep]
        if any(labels):
            queries.append(Query(x["question"], [(at, labels)]))
    return Source("multirc", queries, pool)


def fever(data: Path) -> Source:
    """ERASER FEVER claims whose Wikipedia page is in the training split (by page name)."""
    pool: list[Passage] = []
    seen: dict[tuple[str, ...], int] = {}
    queries: list[Query] = []
    for x in _read_jsonl(data / "eraser_fever" / "fever_val.jsonl"):
        name = x["docs"][0]["docid"]
        if not x["evidence_groups"] or split_of("fever", name) != "train":
            continue
        title = detok(name.replace("_", " "))
        at, keep = _page(pool, seen, title, x["docs"][0]["sentences"])
        ids = {  # any one group is sufficient evidence: every group's sentences are relevant
            i
            for group in x["evidence_groups"]
            for e in group
            if e["docid"] == name
            for i in e["sentence_ids"]
        }
        labels = [int(i in ids) for i in keep]
        if any(labels):
            queries.append(Query(x["claim"], [(at, labels)]))
    return Source("fever", queries, pool)


LOADERS: dict[str, Callable[[Path], Source]] = {
    "squad": squad,
    "wikiqa": wikiqa,
    "scifact": scifact,
    "hotpotqa": hotpotqa,
    "multirc": multirc,
    "fever": fever,
}
# Families never trained on, kept for bench/heldout.py: the multi-hop MuSiQue sample and the
# HotpotQA fullwiki subsets; the domain families COVID-QA and SubjQA (SubjQA's train reviews
# also appear in its dev/test files, so its train split cannot be used cleanly).
HELD_OUT = ("musique", "hotpot_fullwiki", "covid", "subjqa")


def held_out_titles(data: Path) -> set[str]:
    """Titles of every paragraph of the held-out multi-hop families (HotpotQA fullwiki, MuSiQue),
    casefolded: the same Wikipedia page also turns up in the HotpotQA train sample and in FEVER."""
    titles: set[str] = set()
    fullwiki = data / "hotpotqa_fullwiki_dev_subsets" / "amor_test500.jsonl"
    if fullwiki.is_file():
        titles |= {t for x in _read_jsonl(fullwiki) for t, _ in x["context"]}
    musique = data / "musique_hipporag_train100" / "musique_train.json"
    if musique.is_file():
        titles |= {p["title"] for x in json.loads(musique.read_text()) for p in x["paragraphs"]}
    return {_title_key(t) for t in titles}


def _title_key(title: str) -> str:
    return " ".join(unescape(title).replace("_", " ").casefold().split())


def without_titles(source: Source, titles: set[str]) -> Source:
    """``source`` without the questions whose gold passages carry one of ``titles``; passages
    with those titles stay in the pool only as banned (never drawn as negatives)."""
    bad = frozenset(i for i, p in enumerate(source.pool) if _title_key(p.title) in titles)
    if not bad:
        return source
    queries = [
        Query(q.question, q.gold, [i for i in q.fixed if i not in bad], q.banned | bad)
        for q in source.queries
        if not any(i in bad for i, _ in q.gold)
    ]
    return Source(source.name, queries, source.pool)


def load_sources(data: Path, names: list[str] | None = None) -> list[Source]:
    """The training sources, with anything that overlaps a held-out family removed."""
    wanted = names or list(LOADERS)
    unknown = set(wanted) - set(LOADERS)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {sorted(LOADERS)}")
    titles = held_out_titles(data)
    return [
        without_titles(LOADERS[name](data), titles)
        if name in _WIKIPEDIA_PAGES
        else LOADERS[name](data)
        for name in wanted
    ]


# sources whose passages are Wikipedia pages or paragraphs the held-out multi-hop families may
# hold word for word (SQuAD articles are titled by topic, not page, and are other text)
_WIKIPEDIA_PAGES = ("hotpotqa", "fever")
