"""Single-hop families of bench.families beyond the first four: FEVER and MultiRC (ERASER
evidence), COVID-QA (long articles cut into passages) and SubjQA (product, hotel and restaurant
reviews).

Pruner v3 trained on FEVER pages of the training split and on MultiRC's train part, so FEVER
keeps only dev-split pages (claims and negatives) and MultiRC uses its val paragraphs (disjoint
from the train part); COVID-QA and SubjQA were never trained on. FEVER and MultiRC sentences are
PTB-tokenised in the source and detokenised here so that the model sees normal text.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.families import (
    MAX_ANSWER_CHARS,
    MIN_CANDIDATES,
    NEGATIVES,
    PASSAGE_WORDS,
    Candidate,
    Case,
    answer_strings,
    detok,
    given,
    make_case,
    read_json,
    read_jsonl,
    sentence_at,
    split_text,
)
from pruner.data import split_of


def fever(data: Path, rng: random.Random) -> list[Case]:
    """ERASER FEVER val claims on dev-split pages: the claim's Wikipedia intro + intros of 4
    other dev-split pages."""
    items = [
        x
        for x in read_jsonl(data / "eraser_fever" / "fever_val.jsonl")
        if x["evidence_groups"] and split_of("fever", x["docs"][0]["docid"]) == "dev"
    ]
    raw = {d["docid"]: d["sentences"] for x in items for d in x["docs"]}
    titles = {name: detok(name.replace("_", " ")) for name in raw}
    negatives = {name: given(titles[name], [detok(s) for s in raw[name]]) for name in raw}
    names = sorted(name for name, c in negatives.items() if c.sentences)
    cases = []
    for x in items:
        own = x["docs"][0]["docid"]
        ids = [i for e in x["evidence_groups"][0] if e["docid"] == own for i in e["sentence_ids"]]
        gold = given(titles[own], [detok(s) for s in raw[own]], ids, True)
        if not gold.evidence:
            continue
        others = [negatives[n] for n in rng.sample([n for n in names if n != own], NEGATIVES)]
        at = (0, gold.evidence[0])
        cases.append(make_case("fever", x["claim"], [gold], others, (), at, rng))
    return cases


def multirc(data: Path, rng: random.Random) -> list[Case]:
    """ERASER MultiRC val: the question's paragraph + 4 other paragraphs."""
    items = list(read_jsonl(data / "eraser_multirc" / "multirc_val.jsonl"))
    paragraphs = {x["docid"]: given("", [detok(s) for s in x["sentences"]]) for x in items}
    names = sorted(name for name, c in paragraphs.items() if c.sentences)
    cases = []
    for x in items:
        gold = given("", [detok(s) for s in x["sentences"]], x["evidence_sentence_ids"], True)
        if not gold.evidence:
            continue
        others = [
            paragraphs[n] for n in rng.sample([n for n in names if n != x["docid"]], NEGATIVES)
        ]
        cases.append(make_case("multirc", x["question"], [gold], others, (), None, rng))
    return cases


def _chunks(sentences: Sequence[str], words: int = PASSAGE_WORDS) -> list[list[int]]:
    """Runs of consecutive sentence indices of about ``words`` words (greedy)."""
    groups: list[list[int]] = []
    count = 0
    for i, sentence in enumerate(sentences):
        n = len(sentence.split())
        if not groups or count + n > words:
            groups.append([])
            count = 0
        groups[-1].append(i)
        count += n
    return groups


def covid(data: Path, rng: random.Random) -> list[Case]:
    """COVID-QA: each article cut into ~150-word passages; 4 other passages of the article."""
    path = data / "covid_qa_deepset_200423" / "200423_covidQA.fixed_offsets.json"
    return [
        case
        for article in read_json(path)["data"]
        for para in article["paragraphs"]
        for case in _covid_article(para, rng)
    ]


def _covid_article(para: dict[str, Any], rng: random.Random) -> list[Case]:
    text = para["context"]
    sentences, spans = split_text(text)
    groups = _chunks(sentences)
    if len(groups) < MIN_CANDIDATES:
        return []
    title = text.strip().split("\n", 1)[0].strip()
    where = {i: (g, k) for g, group in enumerate(groups) for k, i in enumerate(group)}
    passages = [[sentences[i] for i in group] for group in groups]
    cases = []
    for qa in para["qas"]:
        answer = qa["answers"][0]
        if not answer["text"].strip() or len(answer["text"].strip()) > MAX_ANSWER_CHARS:
            continue
        start = answer["answer_start"] + len(answer["text"]) - len(answer["text"].lstrip())
        g, k = where[sentence_at(spans, start)]
        picks = rng.sample([j for j in range(len(groups)) if j != g], NEGATIVES)
        others = [Candidate(title, passages[j], False, ()) for j in picks]
        gold = [Candidate(title, passages[g], True, (k,))]
        answers = answer_strings([answer["text"]])
        cases.append(make_case("covid", qa["question"], gold, others, answers, (0, k), rng))
    return cases


_NOT_FOUND = "ANSWERNOTFOUND"  # SubjQA's label, also appended to every review
_NUMBER = re.compile(r"\d+")


def _subjqa_rows(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.csv")):
        if path.stem.endswith(("_dev", "_test")):  # train splits are left for training
            with path.open(encoding="utf-8", newline="") as fh:
                rows += csv.DictReader(fh)
    return rows


def _locate(review: str, span: str, start: int) -> tuple[int, int] | None:
    """Where ``span`` is in ``review``: at its offset, else the match nearest to the offset that
    ignores whitespace (about 20% of SubjQA spans are re-tokenised: "were n't", "strong , deep")."""
    if review[start : start + len(span)] == span:
        return start, start + len(span)
    pattern = r"\s*".join(re.escape(c) for c in span if not c.isspace())
    matches = [m.span() for m in re.finditer(pattern, review)] if pattern else []
    return min(matches, key=lambda m: abs(m[0] - start), default=None)


def _pick(tiers: Iterable[Iterable[str]], banned: set[str], rng: random.Random) -> list[str]:
    """NEGATIVES distinct ids, from the first tier first (each tier shuffled)."""
    picks: list[str] = []
    for tier in tiers:
        pool = sorted(set(tier) - banned - set(picks))
        rng.shuffle(pool)
        picks += pool[: NEGATIVES - len(picks)]
    return picks


def subjqa(data: Path, rng: random.Random) -> list[Case]:
    """SubjQA dev + test answerable (question, review) pairs whose span is found in the review.
    Negatives: reviews of the item marked as not answering the same question, then other reviews
    of the item, then of the domain; never one marked as answering it."""
    rows = _subjqa_rows(data / "subjqa")
    reviews = {r["review_id"]: r["review"].removesuffix(_NOT_FOUND).rstrip() for r in rows}
    parsed = {rid: split_text(text) for rid, text in reviews.items()}
    answered: dict[tuple[str, str, str], set[str]] = {}
    declined: dict[tuple[str, str, str], set[str]] = {}
    by_item: dict[tuple[str, str], set[str]] = {}
    by_domain: dict[str, set[str]] = {}
    spans: dict[tuple[str, str, str, str], list[tuple[int, int]]] = {}
    for r in rows:
        rid, key = r["review_id"], (r["domain"], r["item_id"], r["question"])
        if parsed[rid][0]:
            by_item.setdefault(key[:2], set()).add(rid)
            by_domain.setdefault(key[0], set()).add(rid)
        if r["human_ans_spans"] == _NOT_FOUND:
            declined.setdefault(key, set()).add(rid)
            continue
        answered.setdefault(key, set()).add(rid)
        start = int(_NUMBER.findall(r["human_ans_indices"])[0])
        located = _locate(reviews[rid], r["human_ans_spans"], start)
        if located and parsed[rid][0]:
            spans.setdefault((*key, rid), []).append(located)
    cases = []
    for (domain, item, question, rid), found in spans.items():
        key = (domain, item, question)
        tiers = [declined.get(key, set()), by_item[(domain, item)], by_domain[domain]]
        picks = _pick(tiers, answered[key], rng)
        if len(picks) < NEGATIVES:
            continue
        sentences, bounds = parsed[rid]
        at = sentence_at(bounds, found[0][0])
        evidence = tuple(sorted({sentence_at(bounds, a) for a, _ in found}))
        gold = [Candidate("", sentences, True, evidence)]
        others = [Candidate("", parsed[p][0], False, ()) for p in picks]
        answers = answer_strings(reviews[rid][a:b] for a, b in found)
        cases.append(make_case("subjqa", question, gold, others, answers, (0, at), rng))
    return cases
